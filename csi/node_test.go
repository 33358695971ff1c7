package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kuberecord "k8s.io/client-go/tools/record"

	"github.com/glusterkube/glusterkube/mounter"
)

func newTestNode(t *testing.T, f *fakeMounter) (*nodeServer, string) {
	t.Helper()
	dir := t.TempDir()
	n, err := newNodeServer(NodeConfig{NodeID: "n1", Mounter: f, StateDir: filepath.Join(dir, "state"), LogDir: filepath.Join(dir, "log"), MountTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return n, dir
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("got %v, want %v with %q", err, code, msg)
	}
}

// TestNodePublishFake covers what does not need a real mount: the mount
// asked of the mounter, errors mapped to the spec's codes, targets made
// and removed, records kept.
func TestNodePublishFake(t *testing.T) {
	ctx := context.Background()
	t.Run("mounts with the options and records the publish", func(t *testing.T) {
		f := &fakeMounter{}
		n, dir := newTestNode(t, f)
		req := request(func(r *csipb.NodePublishVolumeRequest) {
			r.TargetPath = filepath.Join(dir, "t1")
			r.VolumeContext[contextPodName], r.VolumeContext[contextPodNamespace] = "web-0", "shop"
		})
		if _, err := n.NodePublishVolume(ctx, req); err != nil {
			t.Fatal(err)
		}
		mounts, _ := f.calls()
		if len(mounts) != 1 || mounts[0].Source != "10.0.0.1:/vol_1" || mounts[0].FSType != "glusterfs" || mounts[0].Target != req.TargetPath {
			t.Fatalf("mounts %+v", mounts)
		}
		rec, err := n.records.load(req.TargetPath)
		if err != nil || rec == nil || rec.VolumeID != "vid" || rec.Pod.Name != "web-0" || strings.Join(rec.Options, ",") != strings.Join(mounts[0].Options, ",") {
			t.Fatalf("record %+v %v", rec, err)
		}
	})
	t.Run("target is a file", func(t *testing.T) {
		f := &fakeMounter{}
		n, dir := newTestNode(t, f)
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := n.NodePublishVolume(ctx, request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = file }))
		wantCode(t, err, codes.InvalidArgument, "is a file")
		if m, _ := f.calls(); len(m) != 0 {
			t.Errorf("mounted %v", m)
		}
	})
	for _, tc := range []struct {
		code mounter.Code
		want codes.Code
	}{
		{mounter.NotFound, codes.NotFound}, {mounter.Invalid, codes.InvalidArgument}, {mounter.Busy, codes.Aborted},
		{mounter.Timeout, codes.DeadlineExceeded}, {mounter.Unavailable, codes.Unavailable}, {mounter.Failed, codes.Internal},
	} {
		t.Run("mounter "+string(tc.code), func(t *testing.T) {
			f := &fakeMounter{mountErr: &mounter.Error{Code: tc.code, Message: "boom"}}
			n, dir := newTestNode(t, f)
			target := filepath.Join(dir, "t")
			_, err := n.NodePublishVolume(ctx, request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = target }))
			wantCode(t, err, tc.want, "boom")
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("target left behind: %v", err)
			}
			if rec, _ := n.records.load(target); rec != nil {
				t.Errorf("record of a failed publish: %+v", rec)
			}
		})
	}
}

// TestNodePublishSingleWriter: a SINGLE_NODE_SINGLE_WRITER volume has one
// target on a node; another publish of it elsewhere is FailedPrecondition.
func TestNodePublishSingleWriter(t *testing.T) {
	f := &fakeMounter{}
	n, dir := newTestNode(t, f)
	ctx := context.Background()
	pub := func(target string, mode csipb.VolumeCapability_AccessMode_Mode) error {
		_, err := n.NodePublishVolume(ctx, request(func(r *csipb.NodePublishVolumeRequest) {
			r.TargetPath = filepath.Join(dir, target)
			r.VolumeCapability.AccessMode.Mode = mode
		}))
		return err
	}
	if err := pub("a", csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER); err != nil {
		t.Fatal(err)
	}
	wantCode(t, pub("b", csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER), codes.FailedPrecondition, "one target only")
	wantCode(t, pub("c", csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), codes.FailedPrecondition, "one target only")
	// A record whose target is gone does not count.
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := pub("b", csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER); err != nil {
		t.Fatalf("after the first target went: %v", err)
	}
	if err := pub("d", csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a second target beside a single writer: %v", err)
	}
}

// TestNodePublishSerialised: a second call on a volume and target in
// flight is refused with Aborted; a hung mount ends at the time-out and
// frees the target.
func TestNodePublishSerialised(t *testing.T) {
	f := &fakeMounter{block: make(chan struct{})}
	n, dir := newTestNode(t, f)
	req := request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = filepath.Join(dir, "t") })
	first := make(chan error, 1)
	go func() { _, err := n.NodePublishVolume(context.Background(), req); first <- err }()
	for {
		if m, _ := f.calls(); len(m) == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err := n.NodePublishVolume(context.Background(), req)
	wantCode(t, err, codes.Aborted, "already in progress")
	_, err = n.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: req.TargetPath})
	wantCode(t, err, codes.Aborted, "already in progress")
	// Another target of the same volume is not held up.
	other := request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = filepath.Join(dir, "t2") })
	go func() { _, _ = n.NodePublishVolume(context.Background(), other) }()

	wantCode(t, <-first, codes.DeadlineExceeded, "did not finish in time")
	close(f.block) // mounts answer again
	if _, err := n.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatalf("after the hung mount timed out: %v", err)
	}
}

func TestNodeUnpublishFake(t *testing.T) {
	f := &fakeMounter{}
	n, dir := newTestNode(t, f)
	ctx := context.Background()
	_, err := n.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{TargetPath: "/x"})
	wantCode(t, err, codes.InvalidArgument, "volume_id")
	_, err = n.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "v"})
	wantCode(t, err, codes.InvalidArgument, "target_path")

	// Nothing there: a success.
	if _, err := n.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: filepath.Join(dir, "none")}); err != nil {
		t.Fatal(err)
	}
	// A folder with nothing mounted: removed, with its record.
	target := filepath.Join(dir, "t")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := n.records.save(record{VolumeID: "v", Target: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target: %v", err)
	}
	if rec, _ := n.records.load(target); rec != nil {
		t.Errorf("record left: %+v", rec)
	}
	if _, u := f.calls(); len(u) != 0 {
		t.Errorf("unmounted %v, though nothing was mounted", u)
	}
}

func TestNodeStatsAndHealthFake(t *testing.T) {
	f := &fakeMounter{}
	n, dir := newTestNode(t, f)
	ctx := context.Background()
	_, err := n.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: "v"})
	wantCode(t, err, codes.InvalidArgument, "volume_path")
	_, err = n.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: filepath.Join(dir, "none")})
	wantCode(t, err, codes.NotFound, "does not exist")
	_, err = n.NodeGetVolumeHealth(ctx, &csipb.NodeGetVolumeHealthRequest{VolumeId: "v"})
	wantCode(t, err, codes.NotFound, "not published on node n1")

	// A published target whose mount is gone: stats fail, health says
	// INACCESSIBLE, and the target is remounted in the background.
	target := filepath.Join(dir, "t")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := n.records.save(record{VolumeID: "v", Target: target, Source: "a:/vol", Options: []string{"auto_unmount"}}); err != nil {
		t.Fatal(err)
	}
	_, err = n.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: target})
	wantCode(t, err, codes.Internal, "nothing is mounted")
	resp, err := n.NodeGetVolumeHealth(ctx, &csipb.NodeGetVolumeHealthRequest{VolumeId: "v"})
	if err != nil {
		t.Fatal(err)
	}
	h := resp.GetVolumeHealth().GetHealthStatuses()
	if len(h) != 1 || h[0].GetStatus() != csipb.VolumeHealthErrorType_INACCESSIBLE || h[0].GetReason() != "NotMounted" {
		t.Fatalf("health %v", resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := f.calls()
		if len(m) > 0 {
			if m[0].Source != "a:/vol" || m[0].Target != target || m[0].Options[0] != "auto_unmount" {
				t.Errorf("heal mounted %+v", m[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the target was not healed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealAll: on start, a record whose target is gone is forgotten; one
// whose mount is gone is remounted and its pod gets a Warning Event.
func TestHealAll(t *testing.T) {
	f := &fakeMounter{}
	n, dir := newTestNode(t, f)
	events := kuberecord.NewFakeRecorder(10)
	n.cfg.Events = events
	gone, lost := filepath.Join(dir, "gone"), filepath.Join(dir, "lost")
	if err := os.Mkdir(lost, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, r := range []record{
		{VolumeID: "v1", Target: gone, Source: "a:/v1", Volume: "v1"},
		{VolumeID: "v2", Target: lost, Source: "a:/v2", Volume: "v2", Options: []string{"ro"}, Pod: &podRef{Namespace: "ns", Name: "web-0", UID: "u"}},
	} {
		if err := n.records.save(r); err != nil {
			t.Fatal(err)
		}
	}
	n.healAll(context.Background())
	if rec, _ := n.records.load(gone); rec != nil {
		t.Errorf("record of a gone target kept")
	}
	m, _ := f.calls()
	if len(m) != 1 || m[0].Target != lost || m[0].Options[0] != "ro" {
		t.Fatalf("mounts %+v", m)
	}
	select {
	case e := <-events.Events:
		if !strings.Contains(e, "Warning "+ReasonMountHealed) || !strings.Contains(e, "recreate the pod") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event on the pod")
	}
}

func TestNodeInfoAndCapabilities(t *testing.T) {
	n, _ := newTestNode(t, &fakeMounter{})
	info, err := n.NodeGetInfo(context.Background(), nil)
	// No zone known: an empty topology, never nil (csi-sanity asks for
	// one from a plugin with accessibility constraints).
	if err != nil || info.GetNodeId() != "n1" || info.GetMaxVolumesPerNode() != 0 || info.GetAccessibleTopology() == nil || len(info.GetAccessibleTopology().GetSegments()) != 0 {
		t.Errorf("info %v %v", info, err)
	}
	caps, _ := n.NodeGetCapabilities(context.Background(), nil)
	var got []csipb.NodeServiceCapability_RPC_Type
	for _, c := range caps.GetCapabilities() {
		got = append(got, c.GetRpc().GetType())
	}
	for _, want := range []csipb.NodeServiceCapability_RPC_Type{csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS, csipb.NodeServiceCapability_RPC_GET_VOLUME_HEALTH} {
		if !containsType(got, want) {
			t.Errorf("capabilities %v lack %v", got, want)
		}
	}
	if containsType(got, csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME) {
		t.Errorf("capabilities %v: no staging", got)
	}
}

func containsType(l []csipb.NodeServiceCapability_RPC_Type, t csipb.NodeServiceCapability_RPC_Type) bool {
	for _, x := range l {
		if x == t {
			return true
		}
	}
	return false
}

// A dead FUSE client shows as ENOTCONN or, when the kernel aborted the
// connection with requests in flight, as ECONNABORTED: both are a client
// that exited, and both are healed.
func TestHealthReasonDeadClient(t *testing.T) {
	tests := []struct {
		st   mounter.State
		want string
	}{
		{mounter.State{Exists: true, Corrupted: true, Err: syscall.ENOTCONN}, "FUSEClientExited"},
		{mounter.State{Exists: true, Corrupted: true, Err: &os.PathError{Op: "stat", Path: "/t", Err: syscall.ECONNABORTED}}, "FUSEClientExited"},
		{mounter.State{Exists: true, Corrupted: true, Err: syscall.ESTALE}, "MountBroken"},
		{mounter.State{Exists: true, Mounted: true}, ""},
	}
	for _, tt := range tests {
		if got := healthReason(tt.st); got != tt.want {
			t.Errorf("healthReason(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}
