package provisioner

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Heketi: true}))
}

// heketiCluster creates a heketi test cluster (testenv.HeketiCluster).
func heketiCluster(t testing.TB, h *heketi.Client) string { return testenv.HeketiCluster(t, h) }

// clusterVolumes returns the volumes of one heketi cluster.
func clusterVolumes(t testing.TB, h *heketi.Client, cluster string) []api.VolumeInfoResponse {
	return testenv.ClusterVolumes(t, h, cluster)
}

// fastClient is a clientset without client-go's default 5 QPS.
func fastClient(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 500, 1000
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// callCounter counts heketi calls by operation (the Observe hook).
type callCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *callCounter) observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
}

func (c *callCounter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

type running struct {
	p      *Provisioner
	name   string
	calls  *callCounter
	cancel context.CancelFunc
	done   chan struct{}
	// metrics is the /metrics URL when served.
	metrics string
	// logs are the provisioner's log lines, when recorded.
	logs *logLines
}

// logLines records what a provisioner logs, up to V(5): where the provision
// library says what it decided about each volume ("shouldDelete is false:
// ..."), so a test can wait for the library to have looked at a volume
// instead of sleeping.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

// has reports whether a line holds every one of parts.
func (l *logLines) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// provOptions are startProvisionerWith's extras.
type provOptions struct {
	// metrics serves /metrics on a free port.
	metrics bool
	// logs records the provisioner's logs (running.logs).
	logs bool
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

// startProvisioner runs the provisioner in-process under a name of the
// test's own, so tests never take each other's claims.
func startProvisioner(t testing.TB, env *testenv.Env, name string, hcfg heketi.Config, mutate func(*Config), serveMetrics ...bool) *running {
	t.Helper()
	return startProvisionerWith(t, env, name, hcfg, mutate, provOptions{metrics: len(serveMetrics) > 0 && serveMetrics[0]})
}

// startProvisionerWith is startProvisioner with extras.
func startProvisionerWith(t testing.TB, env *testenv.Env, name string, hcfg heketi.Config, mutate func(*Config), o provOptions) *running {
	t.Helper()
	calls := &callCounter{}
	m := heketi.NewMetrics("glusterkube")
	hcfg.Observe = func(op string, d time.Duration, err error) {
		calls.observe(op, d, err)
		m.Observe(op, d, err)
	}
	addr := ""
	if o.metrics {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	if hcfg.MaxInflight == 0 {
		hcfg.MaxInflight = heketi.DefaultMaxInflight
	}
	// Tests serve in-tree classes only when they ask (mutate): several
	// provisioners of one test binary share the control plane.
	cfg := Config{Name: name, Kube: fastClient(t, env.Config), Heketi: hcfg, InTreeClasses: InTreeOff}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, name: name, calls: calls, cancel: cancel, done: make(chan struct{})}
	if o.logs {
		r.logs = &logLines{}
		ctx = klog.NewContext(ctx, funcr.New(r.logs.add, funcr.Options{Verbosity: 5}))
	}
	if addr != "" {
		r.metrics = "http://" + addr + "/metrics"
	}
	ready := make(chan struct{})
	go func() {
		defer close(r.done)
		err := Run(ctx, p, RunOptions{RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second, CreatePVInterval: time.Second,
			MetricsAddress: addr, Collectors: m.Collectors(), Ready: func() { close(ready) }})
		if err != nil {
			t.Errorf("provisioner: %v", err)
		}
	}()
	<-ready
	t.Cleanup(r.stop)
	return r
}

func provName(ns string) string { return "glusterkube.io/" + ns }

func storageClass(name, provisioner string, reclaim v1.PersistentVolumeReclaimPolicy, params map[string]string) *storagev1.StorageClass {
	expand := true
	return &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          provisioner,
		Parameters:           params,
		ReclaimPolicy:        &reclaim,
		AllowVolumeExpansion: &expand,
	}
}

func createClass(t testing.TB, kube kubernetes.Interface, sc *storagev1.StorageClass) {
	t.Helper()
	if _, err := kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
}

func newClaim(ns, name, class, size string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	if len(modes) == 0 {
		modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      modes,
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// waitBound waits until the claims are Bound and returns their PVs.
func waitBound(t testing.TB, kube kubernetes.Interface, ns string, names []string, timeout time.Duration) map[string]*v1.PersistentVolume {
	t.Helper()
	pvs := map[string]*v1.PersistentVolume{}
	for n, c := range testenv.WaitClaimsBound(t, kube, ns, names, timeout) {
		pv, err := kube.CoreV1().PersistentVolumes().Get(context.Background(), c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pvs[n] = pv
	}
	return pvs
}

// eventually polls cond until it holds or timeout passes.
var eventually = testenv.Eventually

func claimEvents(t testing.TB, kube kubernetes.Interface, ns, claim string) []v1.Event {
	t.Helper()
	list, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + claim})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}
