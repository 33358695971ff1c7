package provisioner

import (
	"context"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/glusterkube/glusterkube/volume"
)

// expandFixture provisions a 1 GiB volume and binds it to a claim that
// now asks for size.
func expandFixture(t *testing.T, size string, expandable bool, source string) (*fixture, *Expander, *v1.PersistentVolume) {
	t.Helper()
	sc := class("gold", map[string]string{volume.ParamVolumeSource: source}, v1.PersistentVolumeReclaimDelete)
	sc.AllowVolumeExpansion = &expandable
	c := claim("ns1", "data", "u-grow", "1Gi")
	f := newFixture(t)
	pv, _, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
	if err != nil {
		t.Fatal(err)
	}
	pv = asLibrary(pv, c)
	pv.Spec.StorageClassName = "gold"
	c.Spec.VolumeName = pv.Name
	c.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse(size)
	c.Status.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}
	ctx := context.Background()
	for _, err := range []error{
		func() error {
			_, err := f.kube.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := f.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := f.kube.CoreV1().PersistentVolumeClaims("ns1").Create(ctx, c, metav1.CreateOptions{})
			return err
		}(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(f.kube, 0)
	e, err := NewExpander(f.p, factory)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return f, e, pv
}

func TestExpanderSync(t *testing.T) {
	tests := []struct {
		name        string
		size        string
		expandable  bool
		preExpanded int // heketi already grown by this many GiB (crash after expand)
		wantGiB     int
		wantExpands int
		wantEvent   string
	}{
		{"grows to the rounded request", "2500Mi", true, 0, 3, 1, ReasonResized},
		{"already grown before a crash: no second expand", "3Gi", true, 2, 3, 0, ReasonResized},
		{"class without allowVolumeExpansion", "3Gi", false, 0, 1, 0, ReasonResizeFailed},
	}
	for _, source := range []string{volume.VolumeSourceCSI, volume.VolumeSourceGlusterfs} {
		for _, tt := range tests {
			t.Run(source+"/"+tt.name, func(t *testing.T) {
				f, e, pv := expandFixture(t, tt.size, tt.expandable, source)
				id := pv.Annotations[AnnHeketiVolumeID]
				f.heketi.SetSize(id, f.heketi.Size(id)+tt.preExpanded)
				if err := e.Sync(context.Background(), "ns1/data"); err != nil {
					t.Fatal(err)
				}
				if got := f.heketi.Size(id); got != tt.wantGiB {
					t.Errorf("heketi size %d, want %d", got, tt.wantGiB)
				}
				if got := f.heketi.Count("volume_expand"); got != tt.wantExpands {
					t.Errorf("%d expands, want %d", got, tt.wantExpands)
				}
				want := resource.MustParse(strings.TrimSuffix(resource.NewQuantity(int64(tt.wantGiB)<<30, resource.BinarySI).String(), ""))
				cur, _ := f.kube.CoreV1().PersistentVolumes().Get(context.Background(), pv.Name, metav1.GetOptions{})
				if got := cur.Spec.Capacity[v1.ResourceStorage]; got.Cmp(want) != 0 {
					t.Errorf("PV capacity %s, want %s", got.String(), want.String())
				}
				cl, _ := f.kube.CoreV1().PersistentVolumeClaims("ns1").Get(context.Background(), "data", metav1.GetOptions{})
				if tt.expandable {
					if got := cl.Status.Capacity[v1.ResourceStorage]; got.Cmp(want) != 0 {
						t.Errorf("claim capacity %s, want %s", got.String(), want.String())
					}
				}
				if !strings.Contains(strings.Join(f.events(), "\n"), tt.wantEvent) {
					t.Errorf("no %s event", tt.wantEvent)
				}
			})
		}
	}
}

// An expansion that timed out may still run in heketi and the volume shows
// its old size: the expander waits for it instead of growing the volume
// twice, and a failed one does not block it.
func TestExpanderWaitsForRunningExpansion(t *testing.T) {
	f, e, pv := expandFixture(t, "3Gi", true, volume.VolumeSourceCSI)
	id := pv.Annotations[AnnHeketiVolumeID]
	op := func(status, sub string) map[string]*api.PendingOperationDetails {
		return map[string]*api.PendingOperationDetails{"op1": {
			PendingOperationInfo: api.PendingOperationInfo{Id: "op1", TypeName: "expand-volume", Status: status, SubStatus: sub},
			Changes:              []api.PendingChangeInfo{{Id: "brick1", Description: "Add brick"}, {Id: id, Description: "Expand volume"}},
		}}
	}
	f.heketi.Pending = op("", "in-flight") // heketi's "new" status is empty
	err := e.Sync(context.Background(), "ns1/data")
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("with an expansion running: %v", err)
	}
	if n := f.heketi.Count("volume_expand"); n != 0 {
		t.Fatalf("%d expands while one runs", n)
	}
	// The earlier one failed: heketi keeps it as failed, the size is unchanged.
	f.heketi.Pending = op("failed", "")
	if err := e.Sync(context.Background(), "ns1/data"); err != nil {
		t.Fatal(err)
	}
	if got := f.heketi.Size(id); got != 3 || f.heketi.Count("volume_expand") != 1 {
		t.Fatalf("size %d after %d expands, want 3 after 1", got, f.heketi.Count("volume_expand"))
	}
}
