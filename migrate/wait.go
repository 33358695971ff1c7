package migrate

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// waitObject watches one object (by name) until cond holds for it (nil
// when it does not exist), and returns it. It lists then watches, so no
// change between a read and the wait is missed.
func waitObject[T runtime.Object](parent context.Context, lw cache.ListerWatcher, example T, key string, timeout time.Duration, what string, cond func(T, bool) bool) (T, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var last T
	var exists bool
	check := func(obj runtime.Object, ok bool) bool {
		var zero T
		last, exists = zero, ok
		if ok {
			last = obj.(T)
		}
		return cond(last, exists)
	}
	_, err := watchtools.UntilWithSync(ctx, lw, example, func(store cache.Store) (bool, error) {
		obj, ok, err := store.GetByKey(key)
		if err != nil {
			return false, err
		}
		if !ok {
			return check(nil, false), nil
		}
		return check(obj.(runtime.Object), true), nil
	}, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return check(nil, false), nil
		case watch.Added, watch.Modified:
			return check(ev.Object, true), nil
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil && parent.Err() == nil {
		return last, fmt.Errorf("%s: not after %s", what, timeout)
	}
	if err != nil {
		return last, fmt.Errorf("%s: %w", what, err)
	}
	return last, nil
}

// pvWatch lists and watches one PV.
func (m *Migrator) pvWatch(name string) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	pvs := m.cfg.Kube.CoreV1().PersistentVolumes()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pvs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pvs.Watch(ctx, o)
		},
	}
}

// claimWatch lists and watches one claim.
func (m *Migrator) claimWatch(ns, name string) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	claims := m.cfg.Kube.CoreV1().PersistentVolumeClaims(ns)
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return claims.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return claims.Watch(ctx, o)
		},
	}
}

// waitPV waits until cond holds for PV name (nil: absent).
func (m *Migrator) waitPV(ctx context.Context, name string, timeout time.Duration, what string, cond func(*v1.PersistentVolume) bool) (*v1.PersistentVolume, error) {
	return waitObject(ctx, m.pvWatch(name), &v1.PersistentVolume{}, name, timeout, what, func(pv *v1.PersistentVolume, ok bool) bool {
		if !ok {
			pv = nil
		}
		return cond(pv)
	})
}

// waitClaim waits until cond holds for claim ns/name (nil: absent).
func (m *Migrator) waitClaim(ctx context.Context, ns, name string, timeout time.Duration, what string, cond func(*v1.PersistentVolumeClaim) bool) (*v1.PersistentVolumeClaim, error) {
	return waitObject(ctx, m.claimWatch(ns, name), &v1.PersistentVolumeClaim{}, ns+"/"+name, timeout, what, func(c *v1.PersistentVolumeClaim, ok bool) bool {
		if !ok {
			c = nil
		}
		return cond(c)
	})
}
