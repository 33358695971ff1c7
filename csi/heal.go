package csi

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/mounter"
)

// Healing. A FUSE mount dies with its client: the plugin's container was
// killed (without a mount service), the mount service was, or the client
// crashed. The kubelet does not publish a running pod's volume again, so
// the node server does it itself, from its publish records: on start, for
// every target; on NodePublishVolume, for its target; and when
// NodeGetVolumeStats finds a target dead. A healed target serves the pod's
// containers started afterwards — not those already running: a container's
// bind mount of the volume is private to it and keeps the dead mount — so
// the pod gets a Warning Event saying it must be recreated (or its
// containers restarted).

// Event reasons on the pod.
const (
	ReasonMountHealed     = "GlusterFSMountHealed"
	ReasonMountHealFailed = "GlusterFSMountHealFailed"
)

// healAll heals every recorded target whose mount is dead, and forgets the
// targets that are gone (the pod was deleted while the plugin was away).
func (n *nodeServer) healAll(ctx context.Context) {
	logger := klog.FromContext(ctx)
	recs, errs := n.records.list()
	for _, err := range errs {
		logger.Error(err, "Reading a publish record failed")
	}
	healed := 0
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		if n.heal(ctx, rec) {
			healed++
		}
	}
	if len(recs) > 0 {
		logger.Info("Checked the mounts of earlier publishes", "publishes", len(recs), "healed", healed)
	}
}

// healLater heals path in the background when it has a record and nothing
// else works on it.
func (n *nodeServer) healLater(ctx context.Context, volumeID, path string) {
	rec, err := n.records.load(path)
	if err != nil || rec == nil || rec.VolumeID != volumeID {
		return
	}
	logger := klog.FromContext(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), logger), n.cfg.MountTimeout+inspectTimeout)
		defer cancel()
		n.heal(ctx, *rec)
	}()
}

// heal remounts rec's target if its mount is dead or gone, and reports
// whether it did. A target somebody else is working on is left alone.
func (n *nodeServer) heal(ctx context.Context, rec record) bool {
	logger := klog.FromContext(ctx).WithValues("volumeID", rec.VolumeID, "target", rec.Target)
	key := lockKey(rec.VolumeID, rec.Target)
	if !n.locks.TryAcquire(key) {
		return false
	}
	defer n.locks.Release(key)
	st, err := mounter.Inspect(rec.Target, inspectTimeout)
	if err != nil {
		logger.Error(err, "Inspecting a published target failed")
		return false
	}
	switch {
	case !st.Exists || !st.IsDir:
		// The kubelet removed the target: the pod is gone.
		logger.V(2).Info("Published target is gone: forgetting it")
		_ = n.records.remove(rec.Target)
		return false
	case st.Mounted && !st.Corrupted:
		return false
	}
	why := describe(st)
	logger.Info("Published target lost its mount: remounting", "reason", why)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.MountTimeout)
	defer cancel()
	if st.Mounted || st.Corrupted {
		if err := n.m.Unmount(ctx, rec.Target); err != nil {
			logger.Error(err, "Unmounting the dead mount failed")
			n.event(rec, false, why, err)
			return false
		}
	}
	err = n.m.Mount(ctx, mounter.MountRequest{Source: rec.Source, Target: rec.Target, FSType: mounter.FSType, Options: rec.Options})
	n.event(rec, err == nil, why, err)
	if err != nil {
		logger.Error(err, "Remounting failed")
		return false
	}
	logger.Info("Remounted")
	return true
}

// event records a Warning Event on the pod of rec, when there is one.
func (n *nodeServer) event(rec record, healed bool, why string, err error) {
	if n.cfg.Events == nil || rec.Pod == nil || rec.Pod.Name == "" {
		return
	}
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: rec.Pod.Namespace, Name: rec.Pod.Name, UID: types.UID(rec.Pod.UID)}
	if healed {
		n.cfg.Events.Eventf(ref, corev1.EventTypeWarning, ReasonMountHealed,
			"GlusterFS volume %s (%s): %s. Node %s remounted it at %s, but containers started before keep the dead mount (a container's bind mount is private to it): recreate the pod (or restart its containers) to use the volume again.",
			rec.Volume, rec.VolumeID, why, n.cfg.NodeID, rec.Target)
		return
	}
	n.cfg.Events.Eventf(ref, corev1.EventTypeWarning, ReasonMountHealFailed,
		"GlusterFS volume %s (%s): %s, and remounting it on node %s failed: %s. The pod cannot use the volume; it will be retried.",
		rec.Volume, rec.VolumeID, why, n.cfg.NodeID, trimMessage(err))
}

func trimMessage(err error) string {
	s := fmt.Sprint(err)
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
