package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m, testenv.Options{Kube: true, Nodes: -1})
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// The replicas run as processes of the real binary, as in a Deployment:
// each with its own client-go scheme (the provision library writes to it
// when it starts), stopped with SIGTERM.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func glusterkubeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "glusterkube-daemon-test-"); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "glusterkube"), "../cmd/glusterkube").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/glusterkube: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "glusterkube")
}

// replica is one `glusterkube run` process.
type replica struct {
	once sync.Once
	addr string
	cmd  *exec.Cmd
	done chan error
	out  *testenv.Buffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startReplica(t *testing.T, args ...string) *replica {
	t.Helper()
	r := &replica{addr: freeAddr(t), done: make(chan error, 1), out: &testenv.Buffer{}}
	args = append([]string{"run", "--address", r.addr, "-v", "2"}, args...)
	r.cmd = exec.Command(glusterkubeBinary(t), args...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	// Dies with the test binary, whatever happens to it.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop sends SIGTERM, as the kubelet does, and expects a clean exit.
func (r *replica) stop(t *testing.T) {
	r.once.Do(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("glusterkube run exited with %v\n%s", err, r.out.String())
			}
		case <-time.After(time.Minute):
			_ = r.cmd.Process.Kill()
			t.Errorf("glusterkube run did not stop within a minute after SIGTERM\n%s", r.out.String())
		}
	})
}

func (r *replica) get(path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, timeout time.Duration, what string, logs func() string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last error: %v)\nlogs:\n%s", what, timeout, last, logs())
	}
}

// TestRunDaemon runs `glusterkube run` twice against the real stack: one
// replica leads, loads the topology ConfigMap into heketi, labels the
// storage nodes, rolls out the DaemonSet and provisions and deletes a
// claim; the other waits; when the leader stops, the standby takes over
// and provisions the next claim. Health, readiness and metrics are served.
func TestRunDaemon(t *testing.T) {
	env := testenv.Get(t)
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	ns := env.Namespace(t)
	kube := env.Client
	ctx := context.Background()
	suffix := ns[len(ns)-5:]

	var nodeNames []string
	var topoNodes []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("%s-n%d", ns, i)
		if err := env.AddNode(ctx, testenv.NodeSpec{Name: name}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), name) })
		nodeNames = append(nodeNames, name)
		topoNodes = append(topoNodes, fmt.Sprintf(`{"node":{"hostnames":{"manage":[%q],"storage":["10.77.0.%d"]},"zone":%d},"devices":["/dev/sdb","/dev/sdc"]}`, name, i, i))
	}
	topo := `{"clusters":[{"nodes":[` + strings.Join(topoNodes, ",") + `]}]}`
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "topology"},
		Data:       map[string]string{"topology.json": topo},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	provName := "glusterkube.io/run-" + suffix
	reclaim := corev1.PersistentVolumeReclaimDelete
	if _, err := kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: ns},
		Provisioner:   provName,
		ReclaimPolicy: &reclaim,
		Parameters:    map[string]string{"volumetype": "replicate:3"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.StorageV1().StorageClasses().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	label := "glusterkube.io/run-" + suffix
	args := []string{
		"--kubeconfig", env.Kubeconfig, "--heketi-url", h.URL,
		"--topology-configmap", ns + "/topology",
		"--node-label", label + "=glusterfs", "--namespace", ns, "--create-namespace=false",
		"--provisioner-name", provName,
		"--leader-election-namespace", ns,
		"--leader-election-lease-duration", "4s", "--leader-election-renew-deadline", "3s", "--leader-election-retry-period", "500ms",
		"--create-pv-retry-interval", "1s",
	}
	first := startReplica(t, args...)
	logs := func() string { return first.out.String() }

	// The topology reaches heketi, the nodes get the label, the DaemonSet
	// rolls out onto them.
	hk, err := heketi.New(heketi.Config{URL: h.URL})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "topology loaded into heketi", logs, func(ctx context.Context) (bool, error) {
		topo, err := hk.TopologyInfo(ctx)
		if err != nil {
			return false, err
		}
		n := 0
		for _, c := range topo.ClusterList {
			n += len(c.Nodes)
		}
		return n == 3, nil
	})
	eventually(t, 2*time.Minute, "storage nodes labelled and DaemonSet rolled out", logs, func(ctx context.Context) (bool, error) {
		for _, n := range nodeNames {
			node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if node.Labels[label] != "glusterfs" {
				return false, nil
			}
		}
		dss, err := kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(dss.Items) != 1 {
			return false, err
		}
		ds := dss.Items[0]
		return ds.Status.DesiredNumberScheduled == 3 && ds.Status.NumberReady == 3 &&
			ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType, nil
	})
	eventually(t, time.Minute, "leader ready", logs, func(context.Context) (bool, error) {
		code, body := first.get("/readyz")
		return code == http.StatusOK && strings.HasPrefix(body, "ok"), nil
	})

	// A second replica waits as standby.
	second := startReplica(t, args...)
	eventually(t, 30*time.Second, "standby serves /readyz", second.out.String, func(context.Context) (bool, error) {
		code, body := second.get("/readyz")
		return code == http.StatusOK && strings.Contains(body, "standby"), nil
	})
	if code, body := second.get("/healthz"); code != http.StatusOK {
		t.Errorf("standby /healthz: %d %s", code, body)
	}

	// The leader provisions a claim and deletes its volume again.
	claim := func(name string) {
		t.Helper()
		class := ns
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &class,
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	volumes := func(ctx context.Context) (int, error) {
		l, err := hk.VolumeList(ctx)
		if err != nil {
			return 0, err
		}
		return len(l.Volumes), nil
	}
	bound := func(name string, logs func() string) {
		t.Helper()
		eventually(t, 2*time.Minute, "claim "+name+" bound", logs, func(ctx context.Context) (bool, error) {
			c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return c.Status.Phase == corev1.ClaimBound, nil
		})
	}
	claim("data-0")
	bound("data-0", logs)
	if n, err := volumes(ctx); err != nil || n != 1 {
		t.Fatalf("heketi volumes after one claim: %d, %v", n, err)
	}
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "heketi volume of the deleted claim removed", logs, func(ctx context.Context) (bool, error) {
		n, err := volumes(ctx)
		return n == 0, err
	})

	code, metrics := first.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	if !regexp.MustCompile(`(?m)^glusterkube_storage_reconciles_total\{outcome="ok"\} [1-9]`).MatchString(metrics) {
		t.Errorf("/metrics counts no successful reconcile:\n%s", grepLines(metrics, "glusterkube_storage"))
	}
	for _, want := range []string{"glusterkube_heketi", "controller_persistentvolumeclaim_provision_total", "go_goroutines",
		"glusterkube_storage_last_success_timestamp_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The leader stops; the standby takes over and provisions.
	first.stop(t)
	eventually(t, time.Minute, "standby took over", second.out.String, func(context.Context) (bool, error) {
		code, body := second.get("/readyz")
		return code == http.StatusOK && strings.HasPrefix(body, "ok"), nil
	})
	claim("data-1")
	bound("data-1", second.out.String)
	if n, err := volumes(ctx); err != nil || n != 1 {
		t.Fatalf("heketi volumes after the second claim: %d, %v", n, err)
	}
}

// TestRunUsage: bad flags are usage errors and start nothing.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing to run", []string{"--heketi-url", "http://127.0.0.1:1", "--topology-configmap", "", "--provisioner=false"}, "nothing to run"},
		{"bad configmap", []string{"--heketi-url", "http://127.0.0.1:1", "--topology-configmap", "topology"}, "NAMESPACE/NAME"},
		{"no heketi", []string{"--heketi-url", ""}, "heketi"},
		{"lease", []string{"--heketi-url", "http://127.0.0.1:1", "--leader-election-renew-deadline", "20s"}, "renew-deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HEKETI_CLI_SERVER", "")
			var out bytes.Buffer
			code := app.Main(append([]string{"run", "--kubeconfig", "/nonexistent"}, tc.args...), strings.NewReader(""), &out, &out)
			if code != app.ExitUsage {
				t.Fatalf("exit code %d, want %d\n%s", code, app.ExitUsage, out.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q lacks %q", out.String(), tc.want)
			}
		})
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
