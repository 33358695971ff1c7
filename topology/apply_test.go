package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// fakeHeketi records calls and fails the ones its hooks say, with heketi's
// own messages. It keeps no topology: Apply only adds.
type fakeHeketi struct {
	mu       sync.Mutex
	nextID   int
	clusters map[string]int // id -> nodes
	devices  []api.DeviceAddRequest
	nodes    []api.NodeAddRequest
	deleted  []string

	failNode   func(req *api.NodeAddRequest) error
	failDevice func(req *api.DeviceAddRequest) error

	inflight, maxInflight atomic.Int32
	delay                 time.Duration
}

func newFake() *fakeHeketi { return &fakeHeketi{clusters: map[string]int{}} }

// id returns a heketi-style id (32 hex digits); prefix is a hex digit.
func (f *fakeHeketi) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s%031x", prefix, f.nextID)
}

func (f *fakeHeketi) enter() func() {
	n := f.inflight.Add(1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	return func() { f.inflight.Add(-1) }
}

func (f *fakeHeketi) TopologyInfo(context.Context) (*api.TopologyInfoResponse, error) {
	return &api.TopologyInfoResponse{}, nil
}

func (f *fakeHeketi) ClusterCreate(_ context.Context, req *api.ClusterCreateRequest) (*api.ClusterInfoResponse, error) {
	defer f.enter()()
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("c")
	f.clusters[id] = 0
	return &api.ClusterInfoResponse{Id: id, ClusterFlags: req.ClusterFlags}, nil
}

func (f *fakeHeketi) ClusterInfo(_ context.Context, id string) (*api.ClusterInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := &api.ClusterInfoResponse{Id: id}
	for range f.clusters[id] {
		info.Nodes = append(info.Nodes, "x")
	}
	return info, nil
}

func (f *fakeHeketi) ClusterDelete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	delete(f.clusters, id)
	return nil
}

func (f *fakeHeketi) NodeAdd(_ context.Context, req *api.NodeAddRequest) (*api.NodeInfoResponse, error) {
	defer f.enter()()
	if err := req.Validate(); err != nil {
		return nil, &heketi.Error{Op: "node_add", Status: 400, Message: "validation failed: " + err.Error()}
	}
	if f.failNode != nil {
		if err := f.failNode(req); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = append(f.nodes, *req)
	f.clusters[req.ClusterId]++
	info := &api.NodeInfoResponse{}
	info.Id = f.id("e")
	info.NodeAddRequest = *req
	return info, nil
}

func (f *fakeHeketi) DeviceAdd(_ context.Context, req *api.DeviceAddRequest) error {
	defer f.enter()()
	if err := req.Validate(); err != nil {
		return &heketi.Error{Op: "device_add", Status: 400, Message: "validation failed: " + err.Error()}
	}
	if f.failDevice != nil {
		if err := f.failDevice(req); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices = append(f.devices, *req)
	return nil
}

func bigDoc(nodes, devices int) string {
	var ns []string
	for i := range nodes {
		var ds []string
		for d := range devices {
			ds = append(ds, fmt.Sprintf("%q", fmt.Sprintf("/dev/sd%c", 'b'+d)))
		}
		ns = append(ns, jnode(fmt.Sprintf("node-%d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), strings.Join(ds, ", ")))
	}
	return jsonDoc(ns...)
}

func TestApply(t *testing.T) {
	pvError := &heketi.Error{Op: "device_add", Status: 500, Message: `Setup of device /dev/sdc failed (already initialized or contains data?):   Can't initialize physical volume "/dev/sdc" of volume group "vg_x" without -ff`}
	glusterdError := &heketi.Error{Op: "node_add", Status: 400, Message: "New Node doesn't have glusterd running"}

	tests := []struct {
		name       string
		doc        string
		failNode   func(*api.NodeAddRequest) error
		failDevice func(*api.DeviceAddRequest) error
		wantDone   int
		wantFailed int
		wantSkip   int
		wantHint   string
		wantDelete bool
	}{
		{
			name:     "everything succeeds",
			doc:      bigDoc(3, 2),
			wantDone: 1 + 3 + 6,
		},
		{
			name: "one device holds data: the rest goes on, hint says wipe or destroydata",
			doc:  bigDoc(3, 2),
			failDevice: func(r *api.DeviceAddRequest) error {
				if r.Name == "/dev/sdc" {
					return pvError
				}
				return nil
			},
			wantDone: 1 + 3 + 3, wantFailed: 3,
			wantHint: `set "destroydata": true for this device only if you mean to lose what is on it`,
		},
		{
			name: "a node without glusterd: its devices are skipped, the others load",
			doc:  bigDoc(3, 2),
			failNode: func(r *api.NodeAddRequest) error {
				if r.Hostnames.Manage[0] == "node-1" {
					return glusterdError
				}
				return nil
			},
			wantDone: 1 + 2 + 4, wantFailed: 1, wantSkip: 2,
			wantHint: "the GlusterFS DaemonSet pod on that node is not ready",
		},
		{
			name: "no node can be added: the new cluster is removed again",
			doc:  bigDoc(3, 1),
			failNode: func(*api.NodeAddRequest) error {
				return glusterdError
			},
			wantDone: 1, wantFailed: 3, wantSkip: 3,
			wantDelete: true,
		},
		{
			name: "heketi unreachable: the operations not yet started are skipped",
			doc:  bigDoc(3, 1),
			failNode: func(*api.NodeAddRequest) error {
				return &heketi.Error{Op: "node_add", Message: "dial tcp 127.0.0.1:1: connect: connection refused", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
			},
			// Parallel 1: the first node add fails, the next two are
			// skipped without a call; all devices are skipped.
			wantDone: 1, wantFailed: 1, wantSkip: 2 + 3,
			wantHint: "heketi is unreachable",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.failNode, f.failDevice = tc.failNode, tc.failDevice
			topo := mustLoad(t, "t.json", tc.doc)
			p := PlanAgainst(topo, nil)
			var progress []int
			parallel := 4
			if strings.Contains(tc.name, "unreachable") {
				parallel = 1
			}
			rep, err := Apply(context.Background(), f, p, Options{Parallel: parallel, Progress: func(_ Result, done, total int) {
				progress = append(progress, done)
				if total != planTotal(p) {
					t.Errorf("progress total = %d, want %d", total, planTotal(p))
				}
			}})
			if got := rep.Count(Done); got != tc.wantDone {
				t.Errorf("done = %d, want %d", got, tc.wantDone)
			}
			if got := rep.Count(Failed); got != tc.wantFailed {
				t.Errorf("failed = %d, want %d", got, tc.wantFailed)
			}
			if got := rep.Count(Skipped); got != tc.wantSkip {
				t.Errorf("skipped = %d, want %d", got, tc.wantSkip)
			}
			if (err != nil) != (tc.wantFailed+tc.wantSkip > 0) {
				t.Errorf("err = %v", err)
			}
			if len(progress) != len(rep.Results) || (len(progress) > 0 && progress[len(progress)-1] != len(rep.Results)) {
				t.Errorf("progress calls %v for %d results", progress, len(rep.Results))
			}
			if tc.wantHint != "" {
				found := false
				for _, r := range rep.Failures() {
					found = found || strings.Contains(r.Hint, tc.wantHint)
				}
				if !found {
					t.Errorf("no failure has hint %q: %+v", tc.wantHint, rep.Failures())
				}
			}
			for _, r := range rep.Failures() {
				if r.Status == Failed && r.Error == "" {
					t.Errorf("failure without heketi's message: %+v", r)
				}
			}
			if got := len(f.deleted) > 0; got != tc.wantDelete {
				t.Errorf("cluster deleted = %v, want %v", got, tc.wantDelete)
			}
			var sum, js bytes.Buffer
			if err := rep.WriteSummary(&sum); err != nil {
				t.Fatal(err)
			}
			if tc.wantFailed > 0 && !strings.Contains(sum.String(), "re-run load") {
				t.Errorf("summary does not say to re-run:\n%s", sum.String())
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back ReportJSON
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Failed != tc.wantFailed || back.OK != (err == nil && tc.wantFailed+tc.wantSkip == 0) {
				t.Errorf("JSON report: err=%v %+v", err, back)
			}
		})
	}
}

func TestApplyBoundsParallelism(t *testing.T) {
	f := newFake()
	f.delay = 2 * time.Millisecond
	p := PlanAgainst(mustLoad(t, "t.json", bigDoc(20, 4)), nil)
	if _, err := Apply(context.Background(), f, p, Options{Parallel: 3}); err != nil {
		t.Fatal(err)
	}
	if got := f.maxInflight.Load(); got > 3 || got < 2 {
		t.Errorf("max operations in flight = %d, want 2..3 with --parallel 3", got)
	}
	if len(f.devices) != 80 || len(f.nodes) != 20 {
		t.Errorf("added %d nodes, %d devices; want 20, 80", len(f.nodes), len(f.devices))
	}
}

func TestApplyDestroyDataAsTheFileSays(t *testing.T) {
	f := newFake()
	topo := mustLoad(t, "t.json", jsonDoc(
		jnode("node-1", "10.0.0.11", `"/dev/sdb", {"name": "/dev/sdc", "destroydata": true}`),
		goodNode2, goodNode3))
	if _, err := Apply(context.Background(), f, PlanAgainst(topo, nil), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.devices {
		if d.DestroyData != (d.Name == "/dev/sdc") {
			t.Errorf("device %s sent with destroydata=%v", d.Name, d.DestroyData)
		}
	}
}
