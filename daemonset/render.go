package daemonset

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

//go:embed glusterfs-daemonset.yaml
var template []byte

// containerName is the glusterd container in the template.
const containerName = "glusterfs"

// Manifest is what glusterkube applies: the DaemonSet and, unless disabled,
// its Namespace.
type Manifest struct {
	Namespace *corev1.Namespace
	DaemonSet *appsv1.DaemonSet
}

// Render fills the embedded template with v and validates the result.
func Render(v Values) (*Manifest, error) {
	ds := &appsv1.DaemonSet{}
	if err := yaml.UnmarshalStrict(template, ds); err != nil {
		return nil, fmt.Errorf("embedded DaemonSet template: %w", err)
	}
	ds.Namespace = DefaultNamespace
	if v.Name != "" {
		ds.Name = v.Name
	}
	if v.Namespace != "" {
		ds.Namespace = v.Namespace
	}
	pod := &ds.Spec.Template.Spec
	c := container(pod)
	if c == nil {
		return nil, fmt.Errorf("embedded DaemonSet template has no %s container", containerName)
	}
	if v.Image != "" {
		c.Image = v.Image
	}
	if v.ImagePullPolicy != "" {
		c.ImagePullPolicy = v.ImagePullPolicy
	}
	if v.NodeSelector != nil {
		pod.NodeSelector = v.NodeSelector
	}
	if v.Resources != nil {
		c.Resources = *v.Resources
	}
	if v.Tolerations != nil {
		pod.Tolerations = v.Tolerations
	}
	if v.PriorityClassName != "" {
		pod.PriorityClassName = v.PriorityClassName
	}
	if err := validate(ds); err != nil {
		return nil, err
	}
	m := &Manifest{DaemonSet: ds}
	if v.CreateNamespace == nil || *v.CreateNamespace {
		m.Namespace = &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ds.Namespace},
		}
	}
	return m, nil
}

func container(pod *corev1.PodSpec) *corev1.Container {
	for i := range pod.Containers {
		if pod.Containers[i].Name == containerName {
			return &pod.Containers[i]
		}
	}
	return nil
}

// validate checks the settable fields; each error names the field.
func validate(ds *appsv1.DaemonSet) error {
	var errs []error
	if e := validation.IsDNS1123Subdomain(ds.Name); len(e) > 0 {
		errs = append(errs, fmt.Errorf("name %q: %s", ds.Name, strings.Join(e, "; ")))
	}
	if e := validation.IsDNS1123Label(ds.Namespace); len(e) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", ds.Namespace, strings.Join(e, "; ")))
	}
	pod := ds.Spec.Template.Spec
	c := container(&pod)
	if strings.TrimSpace(c.Image) == "" || strings.ContainsAny(c.Image, " \t\n") {
		errs = append(errs, fmt.Errorf("image %q: want an image reference such as gluster/gluster-centos:latest", c.Image))
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("imagePullPolicy %q: want Always, IfNotPresent or Never", c.ImagePullPolicy))
	}
	if len(pod.NodeSelector) == 0 {
		errs = append(errs, errors.New("nodeSelector is empty: glusterd would run on every node; select the storage nodes, e.g. storagenode=glusterfs"))
	}
	for k, val := range pod.NodeSelector {
		if e := validation.IsQualifiedName(k); len(e) > 0 {
			errs = append(errs, fmt.Errorf("nodeSelector key %q: %s", k, strings.Join(e, "; ")))
		}
		if e := validation.IsValidLabelValue(val); len(e) > 0 {
			errs = append(errs, fmt.Errorf("nodeSelector %s value %q: %s", k, val, strings.Join(e, "; ")))
		}
	}
	for i, t := range pod.Tolerations {
		if err := validateToleration(t); err != nil {
			errs = append(errs, fmt.Errorf("tolerations[%d]: %w", i, err))
		}
	}
	for name, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("resources: %s request %s exceeds its limit %s", name, req.String(), lim.String()))
		}
	}
	if pod.PriorityClassName != "" {
		if e := validation.IsDNS1123Subdomain(pod.PriorityClassName); len(e) > 0 {
			errs = append(errs, fmt.Errorf("priorityClassName %q: %s", pod.PriorityClassName, strings.Join(e, "; ")))
		}
	}
	return errors.Join(errs...)
}

func validateToleration(t corev1.Toleration) error {
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		if t.Key == "" {
			return errors.New("an empty key needs operator Exists")
		}
	case corev1.TolerationOpExists:
		if t.Value != "" {
			return fmt.Errorf("operator Exists takes no value (got %q)", t.Value)
		}
	default:
		return fmt.Errorf("operator %q: want Equal or Exists", t.Operator)
	}
	if t.Key != "" {
		if e := validation.IsQualifiedName(t.Key); len(e) > 0 {
			return fmt.Errorf("key %q: %s", t.Key, strings.Join(e, "; "))
		}
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return fmt.Errorf("effect %q: want NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
	}
	return nil
}

// Objects are the manifest's objects in apply order.
func (m *Manifest) Objects() []runtime.Object {
	var out []runtime.Object
	if m.Namespace != nil {
		out = append(out, m.Namespace)
	}
	return append(out, m.DaemonSet)
}

// YAML is the manifest as a multi-document YAML stream that
// `kubectl apply -f -` accepts.
func (m *Manifest) YAML() ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range m.Objects() {
		u, err := intent(obj)
		if err != nil {
			return nil, err
		}
		b, err := yaml.Marshal(u)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// intent is obj as the fields glusterkube means to set: no status and no
// null creationTimestamps, so that server-side apply claims only these.
func intent(obj runtime.Object) (map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(u, "status")
	if spec, ok := u["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(u, "spec")
	}
	dropNullTimestamp(u)
	if spec, ok := u["spec"].(map[string]any); ok {
		if tmpl, ok := spec["template"].(map[string]any); ok {
			dropNullTimestamp(tmpl)
		}
	}
	return u, nil
}

func dropNullTimestamp(obj map[string]any) {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return
	}
	if ts, ok := md["creationTimestamp"]; ok && ts == nil {
		delete(md, "creationTimestamp")
	}
}
