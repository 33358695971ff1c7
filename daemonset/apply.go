package daemonset

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// FieldManager names glusterkube in managedFields.
const FieldManager = "glusterkube"

// Change is what apply did to one object.
type Change string

// Changes.
const (
	Created    Change = "created"
	Configured Change = "configured"
	Unchanged  Change = "unchanged"
)

// ObjectResult is what apply did to one object.
type ObjectResult struct {
	// Ref is kubectl-style, e.g. daemonset.apps/glusterfs.
	Ref       string `json:"ref"`
	Namespace string `json:"namespace,omitempty"`
	Change    Change `json:"change"`
	// Fields are the paths glusterkube sets whose value changed.
	Fields []string `json:"fields,omitempty"`
	// TemplateChanged: the pod template changed; with OnDelete the running
	// pods keep the old one until deleted.
	TemplateChanged bool `json:"templateChanged,omitempty"`
	// Note qualifies the change, e.g. why a dry run could not validate.
	Note string `json:"note,omitempty"`
}

func (r ObjectResult) String() string {
	s := r.Ref + " " + string(r.Change)
	if len(r.Fields) > 0 {
		s += ": " + strings.Join(r.Fields, ", ")
	}
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

// ApplyOptions configure Apply.
type ApplyOptions struct {
	// DryRun asks the API server to validate and report without persisting.
	DryRun bool
}

// Apply server-side applies the manifest with field manager glusterkube,
// forcing ownership of the fields it sets, and reports per object what
// changed. Re-applying the same manifest changes nothing.
func Apply(ctx context.Context, client kubernetes.Interface, m *Manifest, opts ApplyOptions) ([]ObjectResult, error) {
	logger := klog.FromContext(ctx)
	po := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}
	if opts.DryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	var out []ObjectResult
	nsCreated := false
	if ns := m.Namespace; ns != nil {
		want, err := intent(ns)
		if err != nil {
			return out, err
		}
		old, err := client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("get namespace %s: %w", ns.Name, err)
		}
		data, _ := json.Marshal(want)
		got, err := client.CoreV1().Namespaces().Patch(ctx, ns.Name, types.ApplyPatchType, data, po)
		if err != nil {
			return out, fmt.Errorf("apply namespace %s: %w", ns.Name, err)
		}
		r := ObjectResult{Ref: "namespace/" + ns.Name}
		r.Change, r.Fields, err = compare(want, nilIfNotFound(old), got)
		if err != nil {
			return out, err
		}
		nsCreated = r.Change == Created
		out = append(out, r)
	}

	ds := m.DaemonSet
	if opts.DryRun && nsCreated {
		// A dry run does not create the namespace, so the API server
		// cannot take the DaemonSet into it.
		return append(out, ObjectResult{Ref: "daemonset.apps/" + ds.Name, Namespace: ds.Namespace, Change: Created,
			Note: "not validated by the server: its namespace does not exist yet"}), nil
	}
	want, err := intent(ds)
	if err != nil {
		return out, err
	}
	old, err := client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return out, fmt.Errorf("get daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	data, _ := json.Marshal(want)
	got, err := client.AppsV1().DaemonSets(ds.Namespace).Patch(ctx, ds.Name, types.ApplyPatchType, data, po)
	if err != nil {
		if apierrors.IsNotFound(err) && m.Namespace == nil {
			return out, fmt.Errorf("apply daemonset %s/%s: %w (create the namespace, or let glusterkube create it)", ds.Namespace, ds.Name, err)
		}
		return out, fmt.Errorf("apply daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	r := ObjectResult{Ref: "daemonset.apps/" + ds.Name, Namespace: ds.Namespace}
	oldObj := nilIfNotFound(old)
	r.Change, r.Fields, err = compare(want, oldObj, got)
	if err != nil {
		return out, err
	}
	if oldObj != nil && !reflect.DeepEqual(old.Spec.Template, got.Spec.Template) {
		r.TemplateChanged = true
	}
	logger.V(1).Info("Applied", "daemonset", klog.KObj(got), "change", r.Change, "fields", r.Fields)
	out = append(out, r)
	return out, nil
}

func nilIfNotFound[T interface {
	runtime.Object
	GetName() string
}](obj T) runtime.Object {
	if reflect.ValueOf(obj).IsNil() || obj.GetName() == "" {
		return nil
	}
	return obj
}

// compare says how got differs from old, looking only at the fields want
// sets (the API server fills in many more).
func compare(want map[string]any, old, got runtime.Object) (Change, []string, error) {
	if old == nil {
		return Created, nil, nil
	}
	o, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	if err != nil {
		return "", nil, err
	}
	g, err := runtime.DefaultUnstructuredConverter.ToUnstructured(got)
	if err != nil {
		return "", nil, err
	}
	var fields []string
	diffPaths(want, o, g, "", &fields)
	slices.Sort(fields)
	if len(fields) == 0 && metaOf(old).GetResourceVersion() == metaOf(got).GetResourceVersion() {
		return Unchanged, nil, nil
	}
	// With no field listed, something glusterkube no longer sets was
	// dropped, e.g. a toleration removed from the values.
	return Configured, fields, nil
}

func metaOf(obj runtime.Object) metav1.Object {
	m, _ := obj.(metav1.Object)
	return m
}

// diffPaths appends the paths under want whose value differs between old
// and got. Lists are compared whole: a list that changed is one path.
func diffPaths(want any, old, got any, path string, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		om, _ := old.(map[string]any)
		gm, _ := got.(map[string]any)
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffPaths(w[k], om[k], gm[k], p, out)
		}
	case []any:
		ol, _ := old.([]any)
		gl, _ := got.([]any)
		if len(ol) != len(gl) {
			*out = append(*out, path)
			return
		}
		for i := range w {
			if i >= len(ol) {
				break
			}
			diffPaths(w[i], ol[i], gl[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(old, got) {
			*out = append(*out, path)
		}
	}
}
