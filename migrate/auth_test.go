package migrate

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/volume"
)

// PVs of a class on another heketi server with authentication (restuser
// and a Secret, as in-tree classes usually were): the plan reads the
// volume with the class's credentials; the CSI PV's handle names that
// server and its annotations the Secret (never the key), so
// glusterkube's provisioner, whose default server is another one, deletes
// the volume there when the claim goes.
func TestApplyClassWithHeketiAuth(t *testing.T) {
	env := testenv.Get(t)
	ns, recNS := env.Namespace(t), env.Namespace(t)
	kube := fastClient(t, env.Config)
	ctx := context.Background()
	testenv.EnsureCSIDriver(context.Background(), t, kube)
	cleanupPVs(t, kube, ns)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	admin, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	cluster := testenv.HeketiCluster(t, admin)
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "heketi-admin"}, Type: volume.SecretType,
		Data: map[string][]byte{volume.SecretKey: []byte(hk.AdminKey)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := createClass(t, kube, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, map[string]string{
		"resturl": hk.URL, "restuser": "admin", "secretNamespace": ns, "secretName": "heketi-admin", "clusterid": cluster,
	}))
	v := makeInTree(t, kube, admin, class, ns, "data")["data"]
	prov := "glusterkube.io/" + ns
	startProvisioner(t, env, prov) // its default heketi server is env's, not hk

	m := newMigrator(t, env, prov, recNS, nil)
	plan, err := m.Plan(ctx, Selection{Claims: claimsOf(ns, "data")})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 1 || plan.Items[0].State != StateReady {
		t.Fatalf("plan: %+v", plan.Items)
	}
	if rep := m.Apply(ctx, plan, nil); rep.Count(OutcomeConverted) != 1 {
		t.Fatalf("apply: %+v", rep.Results)
	}
	pv := getPV(t, kube, waitBound(t, kube, ns, []string{"data"}, time.Minute)["data"])
	if pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != v.HeketiID+"@"+hk.URL || pv.Annotations[provisioner.AnnHeketiSecret] != ns+"/heketi-admin" ||
		pv.Annotations[provisioner.AnnHeketiUser] != "admin" || pv.Annotations[provisioner.AnnHeketiURL] != hk.URL {
		t.Fatalf("PV %s: csi %+v annotations %v", pv.Name, pv.Spec.CSI, pv.Annotations)
	}
	for k, val := range pv.Annotations {
		if strings.Contains(val, hk.AdminKey) {
			t.Errorf("annotation %s holds the heketi key", k)
		}
	}
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the volume deleted on the class's heketi server", func(context.Context) (bool, error) {
		return !slices.Contains(heketiIDs(t, admin, cluster), v.HeketiID), nil
	})
}
