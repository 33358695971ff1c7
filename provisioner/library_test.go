package provisioner

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

func runLibrary(t *testing.T, f *fixture, opts ...func(*controller.ProvisionController) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts = append([]func(*controller.ProvisionController) error{
		controller.LeaderElection(false),
		controller.Threadiness(1),
		// Failed claims come back only after the test is over.
		controller.RateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Hour, time.Hour)),
	}, opts...)
	pc := controller.NewProvisionController(ctx, f.kube, DefaultName, f.p, opts...)
	done := make(chan struct{})
	go func() { defer close(done); pc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func pendingClaim(ns, name, uid string) *v1.PersistentVolumeClaim {
	c := claim(ns, name, uid, "1Gi")
	sc := "gold"
	c.Spec.StorageClassName = &sc
	c.Annotations = map[string]string{"volume.kubernetes.io/storage-provisioner": DefaultName}
	return c
}

func TestLibrarySavesPV(t *testing.T) {
	c := pendingClaim("ns1", "data", "u-lib-1")
	f := newFixture(t, class("gold", nil, v1.PersistentVolumeReclaimRetain), c)
	runLibrary(t, f)
	var pv *v1.PersistentVolume
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		pv, err = f.kube.CoreV1().PersistentVolumes().Get(ctx, "pvc-u-lib-1", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("no PV saved")
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != c.UID || pv.Annotations[AnnProvisionedBy] != DefaultName || pv.Spec.StorageClassName != "gold" {
		t.Errorf("PV %+v", pv.ObjectMeta)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Errorf("reclaim %s", pv.Spec.PersistentVolumeReclaimPolicy)
	}
}

// When the PV cannot be saved, the library gives up after its retries and
// calls Delete with the unsaved PV: the heketi volume must go, not leak.
func TestLibraryDeletesVolumeWhenPVCannotBeSaved(t *testing.T) {
	c := pendingClaim("ns1", "data", "u-lib-2")
	f := newFixture(t, class("gold", nil, v1.PersistentVolumeReclaimDelete), c)
	f.kube.PrependReactor("create", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(context.DeadlineExceeded)
	})
	runLibrary(t, f, controller.CreateProvisionedPVInterval(10*time.Millisecond), controller.CreateProvisionedPVRetryCount(3))
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return f.heketi.Count("volume_create") == 1 && f.heketi.Count("volume_delete") == 1, nil
	})
	if err != nil {
		t.Fatalf("creates %d deletes %d", f.heketi.Count("volume_create"), f.heketi.Count("volume_delete"))
	}
	if n := len(f.heketi.VolumeNames()); n != 0 {
		t.Errorf("%d heketi volumes leaked", n)
	}
	if _, err := f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("endpoints left: %v", err)
	}
	// The GID came back.
	if _, held := f.p.vols.GIDOwner(2000); held {
		t.Error("GID 2000 still held")
	}
}
