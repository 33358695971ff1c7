package csi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kuberecord "k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/mounter"
)

// NodeConfig configures the node service.
type NodeConfig struct {
	// NodeID is the node's id in NodeGetInfo (the Kubernetes node name).
	NodeID string
	// Mounter makes the mounts: a mounter.Client of the mount service, so
	// that FUSE clients outlive the plugin. Nil mounts in this process
	// (mounter.Local), whose FUSE clients die with it.
	Mounter mounter.Mounter
	// StateDir keeps a record of each publish, to heal mounts that died;
	// empty keeps none (and so heals nothing after a restart).
	StateDir string
	// LogDir holds the FUSE clients' logs, one file per GlusterFS volume;
	// empty leaves them where glusterfs puts them.
	LogDir string
	// MountTimeout bounds a mount or an unmount; 0 means
	// mounter.DefaultTimeout.
	MountTimeout time.Duration
	// Events, when set, records Warning Events on the pods whose mounts
	// died (and were healed, or not).
	Events kuberecord.EventRecorder
	// Zone tells the node's zone, which NodeGetInfo reports as its
	// accessible topology (TopologyKeyZone); nil reports none.
	Zone ZoneSource
}

// nodeServer is the CSI node service.
type nodeServer struct {
	csipb.UnimplementedNodeServer
	cfg     NodeConfig
	m       mounter.Mounter
	local   bool
	locks   *VolumeLocks
	records records
}

// inspectTimeout bounds a stat of a target: a FUSE client stuck on its
// servers must not block a call.
const inspectTimeout = 5 * time.Second

func newNodeServer(cfg NodeConfig) (*nodeServer, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("node id is empty: set the node name")
	}
	if cfg.MountTimeout <= 0 {
		cfg.MountTimeout = mounter.DefaultTimeout
	}
	n := &nodeServer{cfg: cfg, m: cfg.Mounter, locks: NewVolumeLocks(), records: records{dir: cfg.StateDir}}
	if n.m == nil {
		n.m = mounter.NewLocal(mounter.LocalConfig{Timeout: cfg.MountTimeout})
		n.local = true
	}
	return n, nil
}

func (n *nodeServer) probe(ctx context.Context) error {
	if !n.local {
		// The FUSE client runs where the mount service runs; it checks.
		return n.m.Probe(ctx)
	}
	return mounter.ProbeClient()
}

func lockKey(volumeID, target string) string { return volumeID + "\x00" + target }

// NodePublishVolume mounts the volume on the target: idempotent (the same
// volume already mounted there is a success), serialised per volume and
// target, bounded by the mount time-out, and healing a target whose mount
// died.
func (n *nodeServer) NodePublishVolume(ctx context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	p, err := parsePublish(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	release, err := n.locks.acquire(lockKey(p.VolumeID, p.Target), fmt.Sprintf("volume %s at %s", p.VolumeID, p.Target))
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.MountTimeout)
	defer cancel()
	logger := klog.FromContext(ctx)

	opts := mountOptions(p, n.cfg.LogDir)
	readOnly := slices.Contains(opts, "ro")
	rec := record{VolumeID: p.VolumeID, Target: p.Target, Source: p.source(), Volume: p.Volume, Options: opts, Pod: p.Pod, SingleWriter: p.SingleWriter, Published: time.Now().UTC()}
	if err := n.checkSingleWriter(p); err != nil {
		return nil, err
	}

	st, err := mounter.Inspect(p.Target, inspectTimeout)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "inspect target %s: %v", p.Target, err)
	}
	healing := ""
	switch {
	case st.Exists && !st.IsDir:
		return nil, status.Errorf(codes.InvalidArgument, "target_path %s is a file, not a directory: a GlusterFS volume mounts on a directory (remove the file)", p.Target)
	case st.Corrupted:
		healing = describe(st)
		logger.Info("The target's mount is dead: remounting", "reason", healing)
		if err := n.m.Unmount(ctx, p.Target); err != nil {
			return nil, mounterStatus(fmt.Sprintf("unmount the dead mount at %s", p.Target), err)
		}
	case st.Mounted:
		if err := sameMount(st, p, readOnly); err != nil {
			return nil, status.Error(codes.AlreadyExists, err.Error())
		}
		n.saveRecord(logger, rec)
		return &csipb.NodePublishVolumeResponse{}, nil
	}

	if !st.Exists {
		// The plugin makes the target (the kubelet makes its parent) and
		// removes it again when the mount fails.
		if err := os.Mkdir(p.Target, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, status.Errorf(codes.Internal, "make target %s: %v", p.Target, err)
		}
	}
	if err := n.m.Mount(ctx, mounter.MountRequest{Source: p.source(), Target: p.Target, FSType: mounter.FSType, Options: opts}); err != nil {
		if !st.Exists {
			_ = os.Remove(p.Target) // ours: made for this mount
		}
		if healing != "" {
			n.event(rec, false, healing, err)
		}
		return nil, mounterStatus(fmt.Sprintf("mount GlusterFS volume %s from %s", p.Volume, strings.Join(p.Servers, ",")), err)
	}
	n.saveRecord(logger, rec)
	if healing != "" {
		n.event(rec, true, healing, nil)
	}
	return &csipb.NodePublishVolumeResponse{}, nil
}

// checkSingleWriter refuses a second target of a volume on this node when
// either publish is SINGLE_NODE_SINGLE_WRITER (the access mode of
// ReadWriteOncePod claims), as the spec asks: FAILED_PRECONDITION. It
// reads the publish records, so it needs a state folder.
func (n *nodeServer) checkSingleWriter(p *publish) error {
	recs, _ := n.records.list()
	for _, r := range recs {
		if r.VolumeID != p.VolumeID || r.Target == p.Target || !(p.SingleWriter || r.SingleWriter) {
			continue
		}
		if _, err := os.Lstat(r.Target); err != nil {
			continue // a stale record: the target is gone
		}
		return status.Errorf(codes.FailedPrecondition, "volume %s is already published on this node at %s, and single-node-single-writer access (ReadWriteOncePod) allows one target only", p.VolumeID, r.Target)
	}
	return nil
}

// sameMount checks that what is mounted at the target is the volume asked
// for, read-only as asked: otherwise the spec's answer is ALREADY_EXISTS.
func sameMount(st mounter.State, p *publish, readOnly bool) error {
	vol := st.Source[strings.LastIndex(st.Source, ":")+1:]
	if st.FSType != "fuse.glusterfs" || strings.TrimPrefix(vol, "/") != p.Volume {
		return fmt.Errorf("target %s already has %s (%s) mounted, not GlusterFS volume %s", p.Target, st.Source, st.FSType, p.Volume)
	}
	if st.ReadOnly != readOnly {
		mode := map[bool]string{true: "read-only", false: "read-write"}
		return fmt.Errorf("target %s already has volume %s mounted %s; this publish asks for %s", p.Target, p.Volume, mode[st.ReadOnly], mode[readOnly])
	}
	return nil
}

func (n *nodeServer) saveRecord(logger klog.Logger, rec record) {
	// The mount is made: a record that cannot be saved costs only the
	// healing of this target after a restart, so it does not fail the call.
	if err := n.records.save(rec); err != nil {
		logger.Error(err, "Saving the publish record failed: this mount will not be healed after a plugin restart")
	}
}

// mounterStatus maps a mounter error to the gRPC status the spec asks for.
func mounterStatus(what string, err error) error {
	code := codes.Internal
	switch mounter.CodeOf(err) {
	case mounter.Invalid:
		code = codes.InvalidArgument
	case mounter.Busy:
		code = codes.Aborted
	case mounter.Timeout:
		code = codes.DeadlineExceeded
	case mounter.NotFound:
		code = codes.NotFound
	case mounter.Unavailable:
		code = codes.Unavailable
	}
	return status.Errorf(code, "%s: %v", what, err)
}

// NodeUnpublishVolume unmounts the target, waits for its FUSE client to
// exit and removes the target folder. Nothing mounted, or no target at
// all, is a success.
func (n *nodeServer) NodeUnpublishVolume(ctx context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	volumeID, target := req.GetVolumeId(), req.GetTargetPath()
	if volumeID == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is missing")
	}
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target_path is missing")
	}
	release, err := n.locks.acquire(lockKey(volumeID, target), fmt.Sprintf("volume %s at %s", volumeID, target))
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.MountTimeout)
	defer cancel()

	st, err := mounter.Inspect(target, inspectTimeout)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "inspect target %s: %v", target, err)
	}
	if st.Mounted || st.Corrupted {
		if err := n.m.Unmount(ctx, target); err != nil {
			return nil, mounterStatus(fmt.Sprintf("unmount %s", target), err)
		}
	}
	if st.Exists {
		if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				return nil, status.Errorf(codes.Internal, "target %s is unmounted but not empty: something other than the volume wrote into it; it is left as it is", target)
			}
			return nil, status.Errorf(codes.Internal, "remove target %s: %v", target, err)
		}
	}
	if err := n.records.remove(target); err != nil {
		klog.FromContext(ctx).Error(err, "Removing the publish record failed")
	}
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetInfo reports the node's id and its zone: the kubelet records the
// zone in the CSINode's topology keys, and the external-provisioner asks
// for volumes in it (local volumes go there).
func (n *nodeServer) NodeGetInfo(ctx context.Context, _ *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	topo, err := n.accessibleTopology(ctx)
	if err != nil {
		return nil, err
	}
	return &csipb.NodeGetInfoResponse{NodeId: n.cfg.NodeID, MaxVolumesPerNode: 0, AccessibleTopology: topo}, nil
}

// nodeCapabilities: no STAGE_UNSTAGE_VOLUME — a GlusterFS FUSE mount per
// pod is cheap, and a staged mount shared by pods would make one dead FUSE
// client break every pod of the volume on the node at once.
var nodeCapabilities = []csipb.NodeServiceCapability_RPC_Type{
	csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csipb.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
	csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

func (n *nodeServer) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	resp := &csipb.NodeGetCapabilitiesResponse{}
	for _, c := range nodeCapabilities {
		resp.Capabilities = append(resp.Capabilities, &csipb.NodeServiceCapability{
			Type: &csipb.NodeServiceCapability_Rpc{Rpc: &csipb.NodeServiceCapability_RPC{Type: c}},
		})
	}
	return resp, nil
}

// NodeGetVolumeStats reports the bytes and inodes of the mounted volume.
// A dead or missing mount is an error saying what is wrong — and it starts
// healing the target in the background, so that containers started
// afterwards see the volume again. (CSI v1.13 removed the alpha
// VolumeCondition of this call; NodeGetVolumeHealth reports it.)
func (n *nodeServer) NodeGetVolumeStats(ctx context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	volumeID, path := req.GetVolumeId(), req.GetVolumePath()
	if volumeID == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is missing")
	}
	if path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_path is missing")
	}
	st, err := mounter.Inspect(path, inspectTimeout)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "inspect %s: %v", path, err)
	}
	if !st.Exists {
		return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", path)
	}
	if st.Corrupted || !st.Mounted {
		n.healLater(ctx, volumeID, path)
		return nil, status.Errorf(codes.Internal, "volume path %s: %s", path, describe(st))
	}
	var fs syscall.Statfs_t
	if err := statfs(path, &fs, inspectTimeout); err != nil {
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", path, err)
	}
	bsize := int64(fs.Frsize)
	if bsize == 0 {
		bsize = fs.Bsize
	}
	total, free, avail := int64(fs.Blocks)*bsize, int64(fs.Bfree)*bsize, int64(fs.Bavail)*bsize
	return &csipb.NodeGetVolumeStatsResponse{
		Usage: []*csipb.VolumeUsage{
			{Unit: csipb.VolumeUsage_BYTES, Total: total, Available: avail, Used: total - free},
			{Unit: csipb.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree), Used: int64(fs.Files) - int64(fs.Ffree)},
		},
	}, nil
}

// NodeGetVolumeHealth reports the volume's health on this node (CSI v1.13,
// alpha; the kubelet's CSIVolumeHealth feature reads it into the pod's
// status): INACCESSIBLE, with a reason and what is wrong, when a mount of
// the volume is dead or gone. Like NodeGetVolumeStats it starts healing
// such a target. Without a publish path it checks every target this node
// published the volume on.
func (n *nodeServer) NodeGetVolumeHealth(ctx context.Context, req *csipb.NodeGetVolumeHealthRequest) (*csipb.NodeGetVolumeHealthResponse, error) {
	volumeID := req.GetVolumeId()
	if volumeID == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is missing")
	}
	var paths []string
	if p := req.GetVolumePublishPath(); p != "" {
		paths = []string{p}
	} else {
		recs, _ := n.records.list()
		for _, r := range recs {
			if r.VolumeID == volumeID {
				paths = append(paths, r.Target)
			}
		}
		if len(paths) == 0 {
			return nil, status.Errorf(codes.NotFound, "volume %s is not published on node %s", volumeID, n.cfg.NodeID)
		}
	}
	health := &csipb.VolumeHealth{VolumeId: volumeID}
	seen := map[string]bool{}
	for _, path := range paths {
		st, err := mounter.Inspect(path, inspectTimeout)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "inspect %s: %v", path, err)
		}
		if !st.Exists {
			if rec, _ := n.records.load(path); rec == nil {
				return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", path)
			}
		}
		reason := healthReason(st)
		if reason == "" || seen[reason] { // one entry per (status, reason)
			continue
		}
		seen[reason] = true
		msg := describe(st)
		if len(paths) > 1 {
			msg = path + ": " + msg
		}
		health.HealthStatuses = append(health.HealthStatuses, &csipb.VolumeHealth_VolumeHealthEntry{
			Status: csipb.VolumeHealthErrorType_INACCESSIBLE, Reason: reason, Message: msg,
		})
		n.healLater(ctx, volumeID, path)
	}
	return &csipb.NodeGetVolumeHealthResponse{VolumeHealth: health}, nil
}

// healthReason is the CamelCase reason of what is wrong at a target, ""
// when nothing is.
func healthReason(st mounter.State) string {
	switch {
	case st.Unresponsive:
		return "MountUnresponsive"
	case st.Corrupted && mounter.ClientGone(st.Err):
		return "FUSEClientExited"
	case st.Corrupted:
		return "MountBroken"
	case !st.Exists:
		return "TargetMissing"
	case !st.Mounted:
		return "NotMounted"
	}
	return ""
}

// describe says in words what is wrong with a target.
func describe(st mounter.State) string {
	switch {
	case st.Unresponsive:
		return fmt.Sprintf("the GlusterFS mount does not answer (%v): its servers may be unreachable", st.Err)
	case st.Corrupted && mounter.ClientGone(st.Err):
		return "the GlusterFS mount is dead (transport endpoint is not connected): its FUSE client exited"
	case st.Corrupted:
		return fmt.Sprintf("the GlusterFS mount is broken: %v", st.Err)
	case !st.Exists:
		return "the target folder is missing"
	case !st.Mounted:
		return "nothing is mounted: the GlusterFS FUSE client exited and unmounted the volume"
	}
	return "mounted"
}

// statfs is a statfs bounded in time (it waits on the servers).
func statfs(path string, fs *syscall.Statfs_t, timeout time.Duration) error {
	done := make(chan error, 1)
	var res syscall.Statfs_t
	go func() { done <- syscall.Statfs(path, &res) }()
	select {
	case err := <-done:
		*fs = res
		return err
	case <-time.After(timeout):
		return fmt.Errorf("statfs did not return within %v: the GlusterFS servers may be unreachable", timeout)
	}
}
