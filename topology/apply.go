package topology

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// DefaultParallel is how many heketi operations load runs at once: heketi's
// own default max_inflight_operations. heketi does not throttle node and
// device adds (that limit counts volume operations and state changes; its
// NodeAdd and DeviceAdd handlers never answer 429), but it serialises them
// on its database, so on the mock executor the
// wall time of 100 nodes × 4 devices is flat from 1 to 32 (0.9–1.6 s,
// within noise; BenchmarkLoadParallel). Where each add runs pvcreate or a
// peer probe on a real node (a second or more), the operations overlap and
// 8 at once is ~8× serial, without asking more of heketi than its default
// budget.
const DefaultParallel = 8

// Op is one kind of heketi operation load runs.
type Op string

const (
	OpClusterCreate Op = "cluster_create"
	OpClusterDelete Op = "cluster_delete"
	OpNodeAdd       Op = "node_add"
	OpDeviceAdd     Op = "device_add"
)

// Status is how an operation ended.
type Status string

const (
	Done    Status = "done"
	Failed  Status = "failed"
	Skipped Status = "skipped" // not attempted: what it needed failed
)

// Result is one finished (or skipped) operation.
type Result struct {
	Op      Op     `json:"op"`
	Path    string `json:"path,omitempty"` // in the file
	Cluster string `json:"cluster,omitempty"`
	Node    string `json:"node,omitempty"` // manage hostname
	Device  string `json:"device,omitempty"`
	// ID is the id heketi gave the cluster or node.
	ID     string `json:"id,omitempty"`
	Status Status `json:"status"`
	// Error is heketi's own message (or why the operation was skipped).
	Error string `json:"error,omitempty"`
	// Hint says what to do about the error.
	Hint string `json:"hint,omitempty"`
	// Uncertain: the call timed out or the connection broke, so heketi may
	// still have done it. A re-run finds out.
	Uncertain bool          `json:"uncertain,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
}

// Object names the object the result is about, for people.
func (r Result) Object() string {
	switch r.Op {
	case OpDeviceAdd:
		return fmt.Sprintf("device %s on %s", r.Device, r.Node)
	case OpNodeAdd:
		return "node " + r.Node
	}
	if r.Cluster != "" {
		return "cluster " + r.Cluster
	}
	return "cluster " + r.Path
}

// Report is what load did.
type Report struct {
	Plan    *Plan         `json:"plan"`
	Results []Result      `json:"results"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Failures returns the failed and skipped results.
func (r *Report) Failures() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Status != Done {
			out = append(out, x)
		}
	}
	return out
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, x := range r.Results {
		if x.Status == s {
			n++
		}
	}
	return n
}

// Options tune Apply.
type Options struct {
	// Parallel bounds the heketi operations in flight (DefaultParallel
	// when ≤ 0).
	Parallel int
	// Progress, when set, is called after each operation finishes, one
	// call at a time, with the number finished and the total.
	Progress func(r Result, done, total int)
}

// Apply runs the plan's Create actions against heketi: clusters first, then
// nodes, then their devices, independent ones in parallel. A failure does
// not stop the others; only what needs the failed object is skipped. The
// error is non-nil when any operation failed or was skipped; the report
// lists each with heketi's message and a hint. Apply is safe to re-run: a
// new plan finds what an earlier run did.
func Apply(ctx context.Context, h Heketi, p *Plan, opts Options) (*Report, error) {
	start := time.Now()
	a := &applier{h: h, opts: opts, report: &Report{Plan: p, Results: []Result{}}}
	if a.opts.Parallel <= 0 {
		a.opts.Parallel = DefaultParallel
	}
	a.sem = make(chan struct{}, a.opts.Parallel)
	a.total = planTotal(p)

	var wg sync.WaitGroup
	for _, cp := range p.Clusters {
		wg.Go(func() { a.cluster(ctx, cp) })
	}
	wg.Wait()
	a.report.Elapsed = time.Since(start)
	if n := len(a.report.Failures()); n > 0 {
		return a.report, fmt.Errorf("%d of %d topology operations did not succeed", n, len(a.report.Results))
	}
	return a.report, nil
}

// planTotal counts the results Apply will report (done, failed or skipped).
func planTotal(p *Plan) int {
	n := 0
	for _, cp := range p.Clusters {
		if cp.Action == Create {
			n++
		}
		for _, np := range cp.Nodes {
			if np.Action == Create || np.Action == Conflict {
				n++
			}
			for _, dp := range np.Devices {
				if dp.Action == Create {
					n++
				}
			}
		}
	}
	return n
}

type applier struct {
	h      Heketi
	opts   Options
	sem    chan struct{}
	total  int
	mu     sync.Mutex
	report *Report
	// unreachable is set once heketi could not be reached even after the
	// client's retries: the operations not yet started are skipped rather
	// than each waiting out its own retries.
	unreachable atomic.Pointer[string]
}

func (a *applier) record(r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.report.Results = append(a.report.Results, r)
	if a.opts.Progress != nil {
		a.opts.Progress(r, len(a.report.Results), a.total)
	}
}

// run executes one heketi call under the parallelism bound and turns its
// outcome into a Result.
func (a *applier) run(ctx context.Context, r Result, call func(context.Context) (string, error)) Result {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		r.Status, r.Error = Skipped, "not attempted: "+ctx.Err().Error()
		a.record(r)
		return r
	}
	defer func() { <-a.sem }()
	if why := a.unreachable.Load(); why != nil {
		r.Status, r.Error = Skipped, "not attempted: "+*why
		r.Hint = "heketi is unreachable; once it answers again, re-run load to finish"
		a.record(r)
		return r
	}
	logger := klog.FromContext(ctx)
	start := time.Now()
	id, err := call(ctx)
	r.Duration = time.Since(start)
	if err != nil {
		r.Status = Failed
		r.Error = heketiMessage(err)
		r.Hint = hint(r, err)
		r.Uncertain = uncertain(err)
		if unreachable(err) {
			msg := "heketi is unreachable: " + r.Error
			a.unreachable.CompareAndSwap(nil, &msg)
		}
		logger.V(1).Info("Topology operation failed", "op", r.Op, "node", r.Node, "device", r.Device, "err", err)
	} else {
		r.Status, r.ID = Done, id
		logger.V(2).Info("Topology operation done", "op", r.Op, "node", r.Node, "device", r.Device, "id", id, "duration", r.Duration)
	}
	a.record(r)
	return r
}

func (a *applier) skip(r Result, why string) {
	r.Status, r.Error = Skipped, why
	a.record(r)
}

func (a *applier) cluster(ctx context.Context, cp *ClusterPlan) {
	created := false
	if cp.Action == Conflict {
		for _, np := range cp.Nodes {
			a.conflict(cp, np)
		}
		return
	}
	if cp.Action == Create {
		req := &api.ClusterCreateRequest{ClusterFlags: cp.Flags}
		res := a.run(ctx, Result{Op: OpClusterCreate, Path: cp.Path}, func(ctx context.Context) (string, error) {
			info, err := a.h.ClusterCreate(ctx, req)
			if err != nil {
				return "", err
			}
			return info.Id, nil
		})
		if res.Status != Done {
			for _, np := range cp.Nodes {
				if np.Action == Create || np.Action == Conflict {
					a.skipNode(np, "", fmt.Sprintf("not attempted: creating its cluster (%s) failed", cp.Path))
				} else {
					a.nodeDevices(ctx, np, np.ID)
				}
			}
			return
		}
		cp.ID, created = res.ID, true
	}

	var wg sync.WaitGroup
	var added atomic.Int32
	for _, np := range cp.Nodes {
		switch np.Action {
		case Conflict:
			a.conflict(cp, np)
		case Create:
			wg.Go(func() {
				req := np.Request
				req.ClusterId = cp.ID
				req.Hostnames.Manage = slices.Clone(req.Hostnames.Manage)
				req.Hostnames.Storage = slices.Clone(req.Hostnames.Storage)
				req.Tags = maps.Clone(req.Tags)
				res := a.run(ctx, Result{Op: OpNodeAdd, Path: np.Path, Cluster: cp.ID, Node: np.Manage}, func(ctx context.Context) (string, error) {
					info, err := a.h.NodeAdd(ctx, &req)
					if err != nil {
						return "", err
					}
					return info.Id, nil
				})
				if res.Status != Done {
					for _, dp := range np.Devices {
						if dp.Action == Create {
							a.skip(Result{Op: OpDeviceAdd, Path: dp.Path, Cluster: cp.ID, Node: np.Manage, Device: dp.Name}, "not attempted: its node could not be added")
						}
					}
					return
				}
				added.Add(1)
				np.ID, np.Cluster = res.ID, cp.ID
				a.nodeDevices(ctx, np, res.ID)
			})
		default:
			wg.Go(func() { a.nodeDevices(ctx, np, np.ID) })
		}
	}
	wg.Wait()

	if created && added.Load() == 0 {
		// Leave no empty cluster behind, as heketi-cli does; a re-run
		// would reuse it anyway, but an operator should not find one.
		a.dropEmptyCluster(ctx, cp)
	}
}

// conflict reports a node heketi would refuse, without calling it.
func (a *applier) conflict(cp *ClusterPlan, np *NodePlan) {
	a.record(Result{Op: OpNodeAdd, Path: np.Path, Cluster: cp.ID, Node: np.Manage, Status: Failed, Error: np.Conflict,
		Hint: "heketi refuses a hostname another node holds: remove that node from heketi, or fix the file"})
	for _, dp := range np.Devices {
		if dp.Action == Create {
			a.skip(Result{Op: OpDeviceAdd, Path: dp.Path, Cluster: cp.ID, Node: np.Manage, Device: dp.Name}, "not attempted: its node could not be added")
		}
	}
}

func (a *applier) skipNode(np *NodePlan, cluster, why string) {
	a.skip(Result{Op: OpNodeAdd, Path: np.Path, Cluster: cluster, Node: np.Manage}, why)
	for _, dp := range np.Devices {
		if dp.Action == Create {
			a.skip(Result{Op: OpDeviceAdd, Path: dp.Path, Cluster: cluster, Node: np.Manage, Device: dp.Name}, "not attempted: its node could not be added")
		}
	}
}

func (a *applier) nodeDevices(ctx context.Context, np *NodePlan, nodeID string) {
	var wg sync.WaitGroup
	for _, dp := range np.Devices {
		if dp.Action != Create {
			continue
		}
		wg.Go(func() {
			req := &api.DeviceAddRequest{
				Device:      api.Device{Name: dp.Name, Tags: maps.Clone(dp.Tags)},
				NodeId:      nodeID,
				DestroyData: dp.DestroyData, // only ever what the file says
			}
			a.run(ctx, Result{Op: OpDeviceAdd, Path: dp.Path, Cluster: np.Cluster, Node: np.Manage, Device: dp.Name}, func(ctx context.Context) (string, error) {
				return "", a.h.DeviceAdd(ctx, req)
			})
		})
	}
	wg.Wait()
}

func (a *applier) dropEmptyCluster(ctx context.Context, cp *ClusterPlan) {
	if a.unreachable.Load() != nil {
		return // a re-run reuses the empty cluster
	}
	ctx = context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := a.h.ClusterInfo(ctx, cp.ID)
	if err != nil || len(info.Nodes) > 0 || len(info.Volumes) > 0 || len(info.BlockVolumes) > 0 {
		return
	}
	if err := a.h.ClusterDelete(ctx, cp.ID); err != nil {
		klog.FromContext(ctx).V(1).Info("Could not remove the empty cluster this load created", "cluster", cp.ID, "err", err)
		return
	}
	// Report the cluster as not created; its nodes' failures say why.
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.report.Results {
		r := &a.report.Results[i]
		if r.Op == OpClusterCreate && r.ID == cp.ID {
			r.Hint = "removed again: none of its nodes could be added"
		}
	}
	cp.ID = ""
}

// heketiMessage is heketi's own message for err, without our wrapping.
func heketiMessage(err error) string {
	var he *heketi.Error
	if errors.As(err, &he) && he.Message != "" {
		return he.Message
	}
	return err.Error()
}

func uncertain(err error) bool {
	if heketi.IsTimeout(err) {
		return true
	}
	var he *heketi.Error
	if errors.As(err, &he) {
		// heketi accepted the operation and we lost track of it while
		// polling (/queue/...), or the connection broke mid-request (not a
		// refused one): the server may have done the work.
		if strings.Contains(he.Message, "/queue/") || strings.Contains(he.Message, "Id not found") {
			return true
		}
		return he.Status == 0 && !refused(err)
	}
	return false
}
