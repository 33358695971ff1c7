package migrate

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// denyCSIPVs makes the API server refuse (422 Invalid) CSI PVs bound to
// claims of ns, as an admission policy of a cluster might, and waits
// until the policy is in force.
func denyCSIPVs(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	deny := []admissionv1.ValidationAction{admissionv1.Deny}
	_, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumes"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: "!has(object.spec.csi) || !has(object.spec.claimRef) || object.spec.claimRef.namespace != '" + ns + "'",
				Message:    "CSI PVs are not allowed here",
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ns, ValidationActions: deny},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), ns, metav1.DeleteOptions{})
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	probe := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-probe"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			ClaimRef:               &v1.ObjectReference{Namespace: ns, Name: "probe"},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: csi.DriverName, VolumeHandle: "probe"}},
		},
	}
	eventually(t, time.Minute, "the admission policy in force", func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().PersistentVolumes().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err), err
	})
}

// When the API server refuses the CSI PV after the old PV was deleted,
// apply creates the old PV again from the record: the claim is Bound to
// it, with its reclaim policy, Endpoints and Service; no record is left
// and heketi is untouched.
func TestApplyRestoresWhenCSIPVRefused(t *testing.T) {
	env := testenv.Get(t)
	ns, recNS := env.Namespace(t), env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL)
	cluster := testenv.HeketiCluster(t, h)
	kube := fastClient(t, env.Config)
	ctx := context.Background()
	cleanupPVs(t, kube, ns)
	class := createClass(t, kube, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster}))
	v := makeInTree(t, kube, h, class, ns, "data")["data"]
	ids := heketiIDs(t, h, cluster)
	denyCSIPVs(t, kube, ns)

	m := newMigrator(t, env, "glusterkube.io/"+ns, recNS, nil)
	plan, err := m.Plan(ctx, Selection{Claims: claimsOf(ns, "data")})
	if err != nil {
		t.Fatal(err)
	}
	rep := m.Apply(ctx, plan, nil)
	if rep.Count(OutcomeRestored) != 1 || !strings.Contains(rep.Results[0].Message, "CSI PVs are not allowed here") {
		t.Fatalf("apply: %+v, want restored with the API server's reason", rep.Results)
	}
	bound := waitBound(t, kube, ns, []string{"data"}, time.Minute)
	pv := getPV(t, kube, bound["data"])
	if pv.Name != v.PV.Name || pv.Spec.Glusterfs == nil || pv.Spec.Glusterfs.Path != v.HeketiName || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete ||
		pv.Annotations[AnnReclaimPolicy] != "" || pv.Spec.ClaimRef.UID != v.Claim.UID {
		t.Errorf("restored PV %s: %+v", pv.Name, pv)
	}
	if ep, svc := endpointsExist(t, kube, ns, v.Endpoints.Name); !ep || !svc {
		t.Errorf("Endpoints %v Service %v after the restore", ep, svc)
	}
	if recs, _ := m.listRecords(ctx); len(recs) != 0 {
		t.Errorf("records left: %v", recs)
	}
	if got := heketiIDs(t, h, cluster); !slices.Equal(got, ids) {
		t.Errorf("heketi volumes %v, were %v", got, ids)
	}
}
