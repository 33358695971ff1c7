package migrate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

var errCrash = errors.New("crash (test)")

// crashAfter is an AfterStep hook that stops the conversion of every PV
// after step, as if the process died there.
func crashAfter(step Step) func(*Config) {
	return func(c *Config) {
		c.AfterStep = func(_ context.Context, _ string, s Step) error {
			if s == step {
				return errCrash
			}
			return nil
		}
	}
}

// A conversion interrupted after each of its steps: the re-run (a fresh
// Migrator: nothing but the cluster survives) ends with the claim Bound to
// the same PV name, a CSI PV with the old reclaim policy (Delete), the
// Endpoints and Service gone, no record, and exactly the heketi volumes
// there were — while glusterkube's provisioner runs and would delete any
// Delete volume it saw released. Restore, after each step up to bind,
// puts the old glusterfs PV back instead.
func TestApplyResumesAfterCrash(t *testing.T) {
	env := testenv.Get(t)
	h := heketiClient(t, env.Heketi.URL)
	cluster := testenv.HeketiCluster(t, h)
	kube := fastClient(t, env.Config)
	testenv.EnsureCSIDriver(context.Background(), t, kube)
	prov := "glusterkube.io/crash"
	startProvisioner(t, env, prov)
	params := map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster}

	for _, restore := range []bool{false, true} {
		for _, step := range Steps {
			if restore && (step == StepReclaim || step == StepForget || step == StepCleanup) {
				continue // finished conversions are not undone
			}
			name := "after-" + string(step)
			if restore {
				name = "restore-" + name
			}
			t.Run(name, func(t *testing.T) {
				ns, recNS := env.Namespace(t), env.Namespace(t)
				cleanupPVs(t, kube, ns)
				ctx := context.Background()
				class := createClass(t, kube, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, params))
				v := makeInTree(t, kube, h, class, ns, "data")["data"]
				ids := heketiIDs(t, h, cluster)

				m := newMigrator(t, env, prov, recNS, crashAfter(step))
				plan, err := m.Plan(ctx, Selection{Claims: claimsOf(ns, "data")})
				if err != nil {
					t.Fatal(err)
				}
				rep := m.Apply(ctx, plan, nil)
				if len(rep.Results) != 1 || rep.Results[0].Outcome != OutcomeFailed || rep.Results[0].Message != errCrash.Error() {
					t.Fatalf("first run: %+v, want the crash", rep.Results)
				}

				// At the crash: no PV lost (the PV or its record is there),
				// and an old PV still there is Retain.
				rec, err := m.readRecord(ctx, v.PV.Name)
				if err != nil {
					t.Fatal(err)
				}
				cur, err := m.getPV(ctx, v.PV.Name)
				if err != nil {
					t.Fatal(err)
				}
				if slices.Index(Steps, step) < slices.Index(Steps, StepForget) && rec == nil {
					if step != StepRetain {
						t.Errorf("after %s: no record", step)
					}
				}
				if cur == nil && rec == nil {
					t.Fatalf("after %s: neither the PV nor its record exists", step)
				}
				if cur != nil && cur.UID == v.PV.UID && cur.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
					t.Errorf("after %s: the old PV is %s, want Retain", step, cur.Spec.PersistentVolumeReclaimPolicy)
				}

				again := newMigrator(t, env, prov, recNS, nil)
				plan, err = again.Plan(ctx, Selection{Claims: claimsOf(ns, "data")})
				if err != nil {
					t.Fatal(err)
				}
				wantState := StateInProgress
				switch step {
				case StepForget:
					wantState = StateCleanup
				case StepCleanup:
					wantState = ""
				}
				if got := states(plan); (wantState == "" && len(got) != 0) || (wantState != "" && !slices.Equal(got, []State{wantState})) {
					t.Fatalf("plan after the crash: %v, want %q", got, wantState)
				}
				if restore {
					rep = again.Restore(ctx, plan, nil)
				} else {
					rep = again.Apply(ctx, plan, nil)
				}
				if !rep.OK() {
					t.Fatalf("re-run: %+v", rep.Results)
				}

				bound := waitBound(t, kube, ns, []string{"data"}, time.Minute)
				pv := getPV(t, kube, bound["data"])
				if pv.Name != v.PV.Name || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Annotations[AnnReclaimPolicy] != "" || pv.Spec.ClaimRef.UID != v.Claim.UID {
					t.Errorf("PV %s (want %s): policy %s, annotations %v", pv.Name, v.PV.Name, pv.Spec.PersistentVolumeReclaimPolicy, pv.Annotations)
				}
				ep, svc := endpointsExist(t, kube, ns, v.Endpoints.Name)
				if restore {
					if pv.Spec.Glusterfs == nil || pv.Spec.Glusterfs.Path != v.HeketiName || !ep || !svc {
						t.Errorf("restored PV %s: source %+v, Endpoints %v, Service %v", pv.Name, pv.Spec.PersistentVolumeSource, ep, svc)
					}
				} else if pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != v.HeketiID || ep || svc {
					t.Errorf("converted PV %s: source %+v, Endpoints left %v, Service left %v", pv.Name, pv.Spec.PersistentVolumeSource, ep, svc)
				}
				if c := getClaim(t, kube, ns, "data"); c.Annotations[AnnMigrating] != "" {
					t.Errorf("claim keeps %s=%s", AnnMigrating, c.Annotations[AnnMigrating])
				}
				if recs, err := again.listRecords(ctx); err != nil || len(recs) != 0 {
					t.Errorf("records left: %v %v", recs, err)
				}
				if got := heketiIDs(t, h, cluster); !slices.Equal(got, ids) {
					t.Errorf("heketi volumes %v, were %v", got, ids)
				}
				// Still safe: a Delete PV that is glusterkube's (converted)
				// or the in-tree plugin's (restored) stays with its volume
				// while the claim lives; delete the claim to see the
				// converted one go through glusterkube's provisioner.
				if !restore {
					if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
					eventually(t, time.Minute, "the converted PV's heketi volume deleted with its claim", func(context.Context) (bool, error) {
						return !slices.Contains(heketiIDs(t, h, cluster), v.HeketiID), nil
					})
				}
			})
		}
	}
}

func claimsOf(ns string, names ...string) []types.NamespacedName {
	out := make([]types.NamespacedName, len(names))
	for i, n := range names {
		out[i] = types.NamespacedName{Namespace: ns, Name: n}
	}
	return out
}

func states(p *Plan) []State {
	var out []State
	for _, it := range p.Items {
		out = append(out, it.State)
	}
	return out
}
