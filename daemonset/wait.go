package daemonset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// NotReadyError is a rollout that did not finish: Status names each storage
// node without a ready, up-to-date pod and why.
type NotReadyError struct {
	Status Status
	// Cause is why waiting stopped (e.g. context.DeadlineExceeded).
	Cause error
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", e.Status.Summary())
	if e.Cause != nil {
		fmt.Fprintf(&b, " (%v)", e.Cause)
	}
	for _, p := range e.Status.Problems() {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	for _, w := range e.Status.Warnings {
		fmt.Fprintf(&b, "\n  daemonset: %s", w)
	}
	return b.String()
}

func (e *NotReadyError) Unwrap() error { return e.Cause }

// WaitOptions configure Wait.
type WaitOptions struct {
	// OnProgress is called with every Status whose Summary or problems
	// differ from the previous one.
	OnProgress func(Status)
	// StallAfter, when positive, calls OnStall with a diagnosed Status
	// (events included) once the rollout made no progress for this long,
	// and again after each further StallAfter without progress.
	StallAfter time.Duration
	OnStall    func(Status)
}

// Wait watches the DaemonSet namespace/name, its pods, ControllerRevisions
// and storage Nodes through informers until Status.Done, or until ctx ends;
// then it returns a *NotReadyError whose Status is diagnosed with the
// namespace's events.
func Wait(ctx context.Context, client kubernetes.Interface, namespace, name string, opts WaitOptions) (Status, error) {
	logger := klog.FromContext(ctx)
	ds, err := client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Status{Namespace: namespace, Name: name}, fmt.Errorf("daemonset %s/%s not found: run glusterkube daemonset apply", namespace, name)
	}
	if err != nil {
		return Status{Namespace: namespace, Name: name}, fmt.Errorf("get daemonset %s/%s: %w", namespace, name, err)
	}
	podSelector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return Status{}, fmt.Errorf("daemonset %s/%s selector: %w", namespace, name, err)
	}
	nodeSelector := labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).String()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	byName := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	bySelector := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = podSelector.String() }))
	storageNodes := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = nodeSelector }))

	dsInf := byName.Apps().V1().DaemonSets()
	podInf := bySelector.Core().V1().Pods()
	revInf := bySelector.Apps().V1().ControllerRevisions()
	nodeInf := storageNodes.Core().V1().Nodes()

	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(changed) },
		UpdateFunc: func(any, any) { poke(changed) },
		DeleteFunc: func(any) { poke(changed) },
	}
	for _, inf := range []cache.SharedIndexInformer{dsInf.Informer(), podInf.Informer(), revInf.Informer(), nodeInf.Informer()} {
		if _, err := inf.AddEventHandler(notify); err != nil {
			return Status{}, err
		}
	}
	factories := []informers.SharedInformerFactory{byName, bySelector, storageNodes}
	defer func() {
		// Stop the informers first: Shutdown waits for them.
		cancel()
		for _, f := range factories {
			f.Shutdown()
		}
	}()
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	for _, f := range factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return Status{Namespace: namespace, Name: name}, &NotReadyError{Status: Status{Namespace: namespace, Name: name}, Cause: fmt.Errorf("sync %v cache: %w", typ, context.Cause(ctx))}
			}
		}
	}

	snap := func() snapshot {
		s := snapshot{}
		if d, err := dsInf.Lister().DaemonSets(namespace).Get(name); err == nil {
			s.ds = d
		}
		s.nodes, _ = nodeInf.Lister().List(labels.Everything())
		s.pods, _ = podInf.Lister().Pods(namespace).List(labels.Everything())
		s.revisions, _ = revInf.Lister().ControllerRevisions(namespace).List(labels.Everything())
		return s
	}

	var stallC <-chan time.Time
	var stall *time.Timer
	if opts.StallAfter > 0 {
		stall = time.NewTimer(opts.StallAfter)
		defer stall.Stop()
		stallC = stall.C
	}
	last := ""
	poke(changed)
	for {
		select {
		case <-ctx.Done():
			// A fresh context: ours is done, but the diagnosis still needs
			// one bounded List of events.
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			st := evaluateWithEvents(dctx, client, namespace, name, snap())
			dcancel()
			return st, &NotReadyError{Status: st, Cause: context.Cause(ctx)}
		case <-stallC:
			st := evaluateWithEvents(ctx, client, namespace, name, snap())
			logger.V(1).Info("Rollout stalled", "daemonset", klog.KRef(namespace, name), "problems", len(st.Problems()))
			if opts.OnStall != nil {
				opts.OnStall(st)
			}
			stall.Reset(opts.StallAfter)
		case <-changed:
			st := evaluate(namespace, name, snap())
			key := progressKey(st)
			if key != last {
				last = key
				if opts.OnProgress != nil {
					opts.OnProgress(st)
				}
				if stall != nil {
					stall.Reset(opts.StallAfter)
				}
			}
			if st.Done() {
				return st, nil
			}
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func progressKey(st Status) string {
	var b strings.Builder
	b.WriteString(st.Summary())
	for _, p := range st.Problems() {
		b.WriteString("\n" + p.Node + " " + p.Reason)
	}
	return b.String()
}

// evaluateWithEvents is evaluate with the namespace's events, for a
// diagnosis. A failure to list events only loses detail.
func evaluateWithEvents(ctx context.Context, client kubernetes.Interface, namespace, name string, s snapshot) Status {
	list, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		klog.FromContext(ctx).V(1).Info("Listing events for the diagnosis failed", "namespace", namespace, "err", err)
	} else {
		for i := range list.Items {
			s.events = append(s.events, &list.Items[i])
		}
	}
	return evaluate(namespace, name, s)
}

// Get returns the current Status with a diagnosis, from one List of each
// kind (no waiting).
func Get(ctx context.Context, client kubernetes.Interface, namespace, name string) (Status, error) {
	st := Status{Namespace: namespace, Name: name}
	ds, err := client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("get daemonset %s/%s: %w", namespace, name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return st, fmt.Errorf("daemonset %s/%s selector: %w", namespace, name, err)
	}
	s := snapshot{ds: ds}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).String()})
	if err != nil {
		return st, fmt.Errorf("list storage nodes: %w", err)
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return st, fmt.Errorf("list pods of daemonset %s/%s: %w", namespace, name, err)
	}
	revs, err := client.AppsV1().ControllerRevisions(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return st, fmt.Errorf("list revisions of daemonset %s/%s: %w", namespace, name, err)
	}
	s.nodes = ptrs[corev1.Node](nodes.Items)
	s.pods = ptrs[corev1.Pod](pods.Items)
	s.revisions = ptrs[appsv1.ControllerRevision](revs.Items)
	return evaluateWithEvents(ctx, client, namespace, name, s), nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// IsNotReady reports whether err is a rollout that did not finish.
func IsNotReady(err error) (*NotReadyError, bool) {
	var nr *NotReadyError
	ok := errors.As(err, &nr)
	return nr, ok
}
