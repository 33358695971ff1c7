package migrate_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

// examples/migrate as a user applies it: the RBAC, then the plan Job's
// and the apply Job's commands run as the Jobs' ServiceAccount convert an
// in-tree PV whose class reads heketi's key from a Secret. Nothing more
// than the example grants is used, and the ServiceAccount may not read
// Secrets outside the namespace the example binds.
func TestExampleMigrateJobs(t *testing.T) {
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	ctx := context.Background()
	kube := env.Client

	// The API server takes every manifest as it is (the Jobs' pods land on
	// no real node here: their commands run below, in this process).
	ap, err := manifest.NewApplier(env.Config, "glusterkube-examples-test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"10-rbac.yaml", "20-plan-job.yaml", "30-apply-job.yaml"} {
		b, err := os.ReadFile(filepath.Join("../examples/migrate", f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := ap.Apply(ctx, b, "")
		if err != nil {
			t.Fatalf("apply examples/migrate/%s: %v", f, err)
		}
		for _, o := range objs {
			if o.GetKind() == "Job" {
				t.Cleanup(func() {
					_ = kube.BatchV1().Jobs(o.GetNamespace()).Delete(context.Background(), o.GetName(), metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
				})
			}
		}
	}
	jobArgs := func(file string) (sa string, args []string) {
		b, err := os.ReadFile(filepath.Join("../examples/migrate", file))
		if err != nil {
			t.Fatal(err)
		}
		var job batchv1.Job
		if err := yaml.UnmarshalStrict(b, &job); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if job.Namespace != "glusterkube" || len(job.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: namespace %q, %d containers", file, job.Namespace, len(job.Spec.Template.Spec.Containers))
		}
		return job.Spec.Template.Spec.ServiceAccountName, job.Spec.Template.Spec.Containers[0].Args
	}

	// An old class with heketi auth: its key in a Secret in default, the
	// namespace the example lets the ServiceAccount read Secrets in.
	h, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	secret := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "heketi-" + ns},
		Type:       v1.SecretType(volume.SecretType),
		StringData: map[string]string{volume.SecretKey: hk.AdminKey},
	}
	if _, err := kube.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Secrets("default").Delete(context.Background(), secret.Name, metav1.DeleteOptions{})
	})
	class := testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, map[string]string{
		"resturl": hk.URL, "restauthenabled": "true", "restuser": "admin",
		"secretNamespace": "default", "secretName": secret.Name, "clusterid": testenv.HeketiCluster(t, h),
	})
	if class, err = kube.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	vol, err := testenv.MakeInTreeVolume(ctx, kube, h, class, testenv.InTreeClaim(ns, "data", class.Name, "1Gi"), 3000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), vol.PV.Name, metav1.DeleteOptions{})
	})
	testenv.WaitClaimsBound(t, kube, ns, []string{"data"}, time.Minute)

	// The Jobs' commands, as their ServiceAccount, with the heketi key
	// file the Secret volume would hold. The class names its own heketi;
	// the Job's --heketi-url is the default for PVs whose class is gone.
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(hk.AdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(file string) string {
		t.Helper()
		sa, args := jobArgs(file)
		if sa != "glusterkube-migrate" {
			t.Fatalf("%s: serviceAccountName %q, want the example's glusterkube-migrate", file, sa)
		}
		for i, a := range args {
			switch {
			case strings.HasPrefix(a, "--heketi-url="):
				args[i] = "--heketi-url=" + hk.URL
			case strings.HasPrefix(a, "--heketi-key-file="):
				args[i] = "--heketi-key-file=" + keyFile
			}
		}
		// Only this test's claim: other tests of the package share the
		// control plane.
		args = append(args, "--kubeconfig", env.ServiceAccountKubeconfig(t, "glusterkube", sa), ns+"/data")
		var out bytes.Buffer
		if err := app.Run(ctx, args, app.Streams{In: strings.NewReader(""), Out: &out, Err: &out}); err != nil {
			t.Fatalf("%s: glusterkube %s: %v\n%s", file, strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	if out := run("20-plan-job.yaml"); !strings.Contains(out, "1 PV(s): 1 ready") {
		t.Fatalf("plan Job: want 1 ready\n%s", out)
	}
	if out := run("30-apply-job.yaml"); !strings.Contains(out, "converted  PV "+vol.PV.Name) || !strings.Contains(out, "1 converted") {
		t.Fatalf("apply Job: want %s converted\n%s", vol.PV.Name, out)
	}
	pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, vol.PV.Name, metav1.GetOptions{})
	if err != nil || pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != vol.HeketiID {
		t.Fatalf("PV after the apply Job: %+v %v", pv, err)
	}
	testenv.WaitClaimsBound(t, kube, ns, []string{"data"}, time.Minute)

	// Least privilege: no Secret outside the bound namespace, no writes
	// to ConfigMaps outside the record namespace.
	for _, ra := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "any"},
		{Verb: "list", Resource: "secrets", Namespace: "default"},
		{Verb: "create", Resource: "configmaps", Namespace: "default"},
		{Verb: "delete", Resource: "persistentvolumeclaims", Namespace: ns, Name: "data"},
	} {
		sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:glusterkube:glusterkube-migrate",
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:glusterkube", "system:authenticated"},
			ResourceAttributes: &ra,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			t.Errorf("the migrate ServiceAccount may %s %s in %s; the example should not grant it", ra.Verb, ra.Resource, ra.Namespace)
		}
	}
}
