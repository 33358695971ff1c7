package csi_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestExampleManifests applies examples/csi to a real API server: the
// CSIDriver is what the node plugin needs, the DaemonSets and the
// controller Deployment roll out (on a kwok node), the RBAC grants what
// the node plugin and the sidecars do. Then it runs the mount service and
// the node plugin with their DaemonSets' own arguments (paths moved under
// a temp folder) and acts as the kubelet: registration, NodeGetInfo, and
// the liveness probe's /healthz.
func TestExampleManifests(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kube := env.Client
	if err := env.AddNode(ctx, testenv.NodeSpec{Name: "csi-example-node"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.DeleteNode(context.Background(), "csi-example-node") })

	files, err := filepath.Glob("../examples/csi/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in examples/csi: %v", err)
	}
	sort.Strings(files)
	ap, err := manifest.NewApplier(env.Config, "glusterkube-examples-test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		applied, err := ap.Apply(ctx, b, "")
		if err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
		for _, o := range applied {
			if o.GetNamespace() == "" {
				kind, name := o.GetKind(), o.GetName()
				t.Cleanup(func() { _ = deleteObject(env, kind, name) })
			}
		}
	}

	driver, err := kube.StorageV1().CSIDrivers().Get(ctx, csi.DriverName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *driver.Spec.AttachRequired || !*driver.Spec.PodInfoOnMount || string(*driver.Spec.FSGroupPolicy) != "None" {
		t.Errorf("CSIDriver %+v", driver.Spec)
	}
	for _, sc := range []string{"glusterfs-csi", "glusterfs-builtin"} {
		c, err := kube.StorageV1().StorageClasses().Get(ctx, sc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("class %s: provisioner %s", sc, c.Provisioner)
	}

	node := daemonSet(ctx, t, env, "glusterkube-csi-node")
	mnt := daemonSet(ctx, t, env, "glusterkube-mounter")
	if mnt.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("mount service update strategy %s, want OnDelete (a rollout must never restart it)", mnt.Spec.UpdateStrategy.Type)
	}
	if !mnt.Spec.Template.Spec.HostPID {
		t.Error("the mount service has no hostPID: its FUSE clients would not see their callers, and send the bricks none of their supplementary groups (the PV's GID)")
	}
	if mnt.Spec.Template.Spec.Containers[0].LivenessProbe != nil {
		t.Error("the mount service has a liveness probe: a restart would kill every mount")
	}
	for _, ds := range []*appsv1.DaemonSet{node, mnt} {
		checkNodePod(t, ds)
	}
	if node.Spec.Template.Spec.Containers[0].LivenessProbe == nil {
		t.Error("the node plugin has no liveness probe")
	}
	eventually(t, 2*time.Minute, "the DaemonSets and the controller Deployment rolled out", func() bool {
		for _, name := range []string{"glusterkube-csi-node", "glusterkube-mounter"} {
			ds, err := kube.AppsV1().DaemonSets("glusterkube").Get(ctx, name, metav1.GetOptions{})
			if err != nil || ds.Status.DesiredNumberScheduled == 0 || ds.Status.NumberReady != ds.Status.DesiredNumberScheduled {
				return false
			}
		}
		d, err := kube.AppsV1().Deployments("glusterkube").Get(ctx, "glusterkube-csi-controller", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2
	})

	// RBAC, asked of the API server as the ServiceAccounts.
	can := func(sa, ns, verb, group, resource, sub, name string) bool {
		sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:glusterkube:" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:glusterkube", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	type perm struct{ sa, ns, verb, group, resource, sub, name string }
	for _, p := range []perm{
		{"glusterkube-csi-node", "any-app", "create", "", "events", "", ""},
		{"glusterkube-csi-node", "any-app", "patch", "", "events", "", ""},
		{"glusterkube-csi-node", "", "get", "", "nodes", "", "any-node"},
		{"glusterkube-csi-controller", "", "create", "", "persistentvolumes", "", ""},
		{"glusterkube-csi-controller", "", "delete", "", "persistentvolumes", "", ""},
		{"glusterkube-csi-controller", "", "patch", "", "persistentvolumes", "", ""},
		{"glusterkube-csi-controller", "app", "watch", "", "persistentvolumeclaims", "", ""},
		{"glusterkube-csi-controller", "app", "patch", "", "persistentvolumeclaims", "status", ""},
		{"glusterkube-csi-controller", "", "list", "storage.k8s.io", "storageclasses", "", ""},
		{"glusterkube-csi-controller", "", "list", "storage.k8s.io", "csinodes", "", ""},
		{"glusterkube-csi-controller", "app", "create", "", "events", "", ""},
		{"glusterkube-csi-controller", "glusterkube", "update", "coordination.k8s.io", "leases", "", ""},
		{"glusterkube-csi-controller", "glusterkube", "get", "", "secrets", "", "heketi-admin"},
	} {
		if !can(p.sa, p.ns, p.verb, p.group, p.resource, p.sub, p.name) {
			t.Errorf("%s cannot %s %s/%s %s in %q", p.sa, p.verb, p.resource, p.sub, p.name, p.ns)
		}
	}
	if can("glusterkube-csi-controller", "glusterkube", "get", "", "secrets", "", "other") || can("glusterkube-csi-node", "", "delete", "", "persistentvolumes", "", "") {
		t.Error("the example RBAC grants more than it should")
	}

	runExampleNode(ctx, t, node, mnt)
}

func deleteObject(env *testenv.Env, kind, name string) error {
	ctx := context.Background()
	switch kind {
	case "CSIDriver":
		return env.Client.StorageV1().CSIDrivers().Delete(ctx, name, metav1.DeleteOptions{})
	case "StorageClass":
		return env.Client.StorageV1().StorageClasses().Delete(ctx, name, metav1.DeleteOptions{})
	case "ClusterRole":
		return env.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	case "ClusterRoleBinding":
		return env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
	case "Namespace":
		return env.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	}
	return nil
}

func daemonSet(ctx context.Context, t *testing.T, env *testenv.Env, name string) *appsv1.DaemonSet {
	t.Helper()
	ds, err := env.Client.AppsV1().DaemonSets("glusterkube").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// checkNodePod checks what a pod that mounts GlusterFS on a node needs.
func checkNodePod(t *testing.T, ds *appsv1.DaemonSet) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" {
		t.Errorf("%s: hostNetwork %v priority %q", ds.Name, spec.HostNetwork, spec.PriorityClassName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("%s: tolerations %+v, want every taint tolerated", ds.Name, spec.Tolerations)
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Errorf("%s: not privileged", ds.Name)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m, ok := mounts["/var/lib/kubelet"]; !ok || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
		t.Errorf("%s: /var/lib/kubelet mount %+v, want Bidirectional propagation", ds.Name, m)
	}
	if _, ok := mounts["/dev/fuse"]; !ok {
		t.Errorf("%s: /dev/fuse not mounted", ds.Name)
	}
}

// runExampleNode runs the mount service and the node plugin with their
// DaemonSets' arguments, every host path moved under a temp folder, and
// acts as the kubelet.
func runExampleNode(ctx context.Context, t *testing.T, node, mnt *appsv1.DaemonSet) {
	root, err := os.MkdirTemp("", "gkx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := l.Addr().String()
	l.Close()
	rewrite := func(args []string) []string {
		var out []string
		for _, a := range args {
			if strings.HasPrefix(a, "--health-address=") {
				// The probe's port, on loopback.
				port := strings.TrimPrefix(a, "--health-address=:")
				if p := node.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port; p.StrVal != "healthz" || node.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != int32(atoi(t, port)) {
					t.Errorf("liveness probe port %v does not match --health-address %s", p, a)
				}
				a = "--health-address=" + health
			}
			a = strings.ReplaceAll(a, "/var/", root+"/var/")
			out = append(out, a)
		}
		return out
	}
	if err := os.MkdirAll(filepath.Join(root, "var/lib/kubelet/plugins_registry"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(name string, args []string) *testenv.Process {
		argv, env := testenv.Command(args...)
		p, err := testenv.StartProcess(name, root, argv[0], argv[1:], append(env, "NODE_NAME=csi-example-node"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, p.Log(30))
			}
			p.Stop(5 * time.Second)
		})
		return p
	}
	mp := start("example-mounter", rewrite(mnt.Spec.Template.Spec.Containers[0].Args))
	np := start("example-node", rewrite(node.Spec.Template.Spec.Containers[0].Args))

	regSock := filepath.Join(root, "var/lib/kubelet/plugins_registry", csi.DriverName+"-reg.sock")
	if err := np.WaitFor(ctx, "registering", func(context.Context) error { _, err := os.Stat(regSock); return err }); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+regSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	info, err := registerapi.NewRegistrationClient(conn).GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetName() != csi.DriverName || !strings.HasPrefix(info.GetEndpoint(), root+"/var/lib/kubelet/plugins/"+csi.DriverName+"/") {
		t.Errorf("registration info %v", info)
	}
	ep, err := grpc.NewClient("unix://"+info.GetEndpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ni, err := csipb.NewNodeClient(ep).NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil || ni.GetNodeId() != "csi-example-node" {
		t.Errorf("NodeGetInfo %v %v, want the node name from $NODE_NAME", ni, err)
	}
	var body string
	if err := np.WaitFor(ctx, "healthy", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+health+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("/healthz: %s", strings.TrimSpace(body))

	// The liveness probe fails when the mount service is gone.
	mp.Stop(5 * time.Second)
	resp, err := http.Get("http://" + health + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "mount service") {
		t.Errorf("/healthz without the mount service: %s %s", resp.Status, b)
	}
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}
