package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/migrate"
)

// The commands as users run them: migrate plan -o json names the claim's
// PV as ready, migrate apply converts it and says so, a second plan finds
// nothing left to do.
func TestMigrateCommands(t *testing.T) {
	env := testenv.Get(t)
	ns, recNS := env.Namespace(t), env.Namespace(t)
	ctx := context.Background()
	kube := env.Client
	h, err := heketi.New(heketi.Config{URL: env.Heketi.URL})
	if err != nil {
		t.Fatal(err)
	}
	cluster := testenv.HeketiCluster(t, h)
	class := testenv.InTreeClass(ns, v1.PersistentVolumeReclaimRetain, map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster})
	if class, err = kube.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	v, err := testenv.MakeInTreeVolume(ctx, kube, h, class, testenv.InTreeClaim(ns, "data", class.Name, "1Gi"), 3000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), v.PV.Name, metav1.DeleteOptions{})
	})
	testenv.WaitClaimsBound(t, kube, ns, []string{"data"}, time.Minute)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		args = append(args, "--kubeconfig", env.Kubeconfig, "--heketi-url", env.Heketi.URL, "--record-namespace", recNS, ns+"/data")
		err := app.Run(ctx, args, app.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
		return out.String() + errOut.String(), err
	}

	out, err := run("migrate", "plan", "-o", "json")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	var plan migrate.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	if len(plan.Items) != 1 || plan.Items[0].PV != v.PV.Name || plan.Items[0].State != migrate.StateReady || plan.Items[0].To == nil || plan.Items[0].To.VolumeHandle != v.HeketiID {
		t.Fatalf("plan: %s", out)
	}
	out, err = run("migrate", "apply")
	if err != nil || !strings.Contains(out, "converted  PV "+v.PV.Name) || !strings.Contains(out, "1 converted") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = run("migrate", "plan")
	if err != nil || !strings.Contains(out, "0 PV(s)") || !strings.Contains(out, "1 already converted") {
		t.Fatalf("plan after apply: %v\n%s", err, out)
	}
	pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, v.PV.Name, metav1.GetOptions{})
	if err != nil || pv.Spec.CSI == nil || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Fatalf("PV after apply: %+v %v", pv, err)
	}
}
