package daemonset

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	yamlv3 "gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/glusterkube/glusterkube/internal/didyoumean"
)

// DefaultNamespace is where the DaemonSet goes when Values say nothing.
const DefaultNamespace = "glusterfs"

// SettingTolerations names Values.Tolerations in messages (the command
// line maps it to its flag).
const SettingTolerations = "the DaemonSet's tolerations"

// Values are the settable parts of the DaemonSet. Zero fields keep the
// template's (or the default's) value. A values file holds the same fields
// in YAML.
type Values struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// CreateNamespace adds the Namespace to the manifest (default true).
	CreateNamespace   *bool                        `json:"createNamespace,omitempty"`
	Image             string                       `json:"image,omitempty"`
	ImagePullPolicy   corev1.PullPolicy            `json:"imagePullPolicy,omitempty"`
	NodeSelector      map[string]string            `json:"nodeSelector,omitempty"`
	Resources         *corev1.ResourceRequirements `json:"resources,omitempty"`
	Tolerations       []corev1.Toleration          `json:"tolerations,omitempty"`
	PriorityClassName string                       `json:"priorityClassName,omitempty"`
}

// Merge returns v with every field set in over replacing v's.
func (v Values) Merge(over Values) Values {
	if over.Name != "" {
		v.Name = over.Name
	}
	if over.Namespace != "" {
		v.Namespace = over.Namespace
	}
	if over.CreateNamespace != nil {
		v.CreateNamespace = over.CreateNamespace
	}
	if over.Image != "" {
		v.Image = over.Image
	}
	if over.ImagePullPolicy != "" {
		v.ImagePullPolicy = over.ImagePullPolicy
	}
	if over.NodeSelector != nil {
		v.NodeSelector = over.NodeSelector
	}
	if over.Resources != nil {
		v.Resources = over.Resources
	}
	if over.Tolerations != nil {
		v.Tolerations = over.Tolerations
	}
	if over.PriorityClassName != "" {
		v.PriorityClassName = over.PriorityClassName
	}
	return v
}

// valueFields are the values file's fields, in the order Values has them.
var valueFields = []string{"name", "namespace", "createNamespace", "image", "imagePullPolicy", "nodeSelector", "resources", "tolerations", "priorityClassName"}

// LoadValues reads a values file. Every problem is reported at once with
// its file:line:col: unknown fields (a typo is not silently ignored, and
// the closest field is suggested) and values of the wrong form.
func LoadValues(path string) (Values, error) {
	var v Values
	b, err := os.ReadFile(path)
	if err != nil {
		return v, fmt.Errorf("read values file: %w", err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		return v, fmt.Errorf("values file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return v, nil // empty file: nothing overridden
	}
	root := doc.Content[0]
	if root.Kind != yamlv3.MappingNode {
		return v, fmt.Errorf("%s:%d:%d: a values file is a mapping of fields: %s", path, root.Line, root.Column, strings.Join(valueFields, ", "))
	}
	var problems []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		if !slices.Contains(valueFields, k.Value) {
			msg := fmt.Sprintf("%s:%d:%d: unknown field %q; expected one of %s", path, k.Line, k.Column, k.Value, strings.Join(valueFields, ", "))
			if s := didyoumean.Closest(k.Value, valueFields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			problems = append(problems, msg)
			continue
		}
		// Decode the field alone, so its error carries its position.
		var x any
		if err := val.Decode(&x); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d:%d: %s: %v", path, val.Line, val.Column, k.Value, err))
			continue
		}
		one, err := json.Marshal(map[string]any{k.Value: x})
		if err == nil {
			var field Values
			err = yaml.UnmarshalStrict(one, &field)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d:%d: %s: %s", path, val.Line, val.Column, k.Value, cleanDecodeError(err)))
		}
	}
	if len(problems) > 0 {
		return v, errors.New(strings.Join(problems, "\n"))
	}
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		return v, fmt.Errorf("values file %s: %w", path, err)
	}
	return v, nil
}

// cleanDecodeError drops the decoder's layers ("error unmarshaling JSON:
// while decoding JSON: ...") from a field's error.
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// ParseToleration parses the --toleration syntax, modelled on kubectl
// taint: "key=value:Effect" (Equal), "key:Effect" (Exists) or "key"
// (Exists, any effect).
func ParseToleration(s string) (corev1.Toleration, error) {
	var t corev1.Toleration
	rest := s
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		t.Effect = corev1.TaintEffect(rest[i+1:])
		rest = rest[:i]
	}
	if k, v, ok := strings.Cut(rest, "="); ok {
		t.Key, t.Value, t.Operator = k, v, corev1.TolerationOpEqual
	} else {
		t.Key, t.Operator = rest, corev1.TolerationOpExists
	}
	if t.Key == "" {
		return t, fmt.Errorf("toleration %q: want key[=value][:NoSchedule|PreferNoSchedule|NoExecute]", s)
	}
	if err := validateToleration(t); err != nil {
		return t, fmt.Errorf("toleration %q: %w", s, err)
	}
	return t, nil
}

// Defaults are the template's own values, for layering flags over.
func Defaults() (Values, error) {
	m, err := Render(Values{})
	if err != nil {
		return Values{}, err
	}
	ds := m.DaemonSet
	pod := ds.Spec.Template.Spec
	c := container(&pod)
	return Values{
		Name:              ds.Name,
		Namespace:         ds.Namespace,
		CreateNamespace:   ptr.To(true),
		Image:             c.Image,
		ImagePullPolicy:   c.ImagePullPolicy,
		NodeSelector:      pod.NodeSelector,
		Resources:         c.Resources.DeepCopy(),
		Tolerations:       pod.Tolerations,
		PriorityClassName: pod.PriorityClassName,
	}, nil
}
