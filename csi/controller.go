package csi

import (
	"context"
	"errors"
	"fmt"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
)

// Keys of the CSI secrets: the Secret a StorageClass names with
// csi.storage.k8s.io/provisioner-secret-name/-namespace (and the
// controller-expand- and controller-publish- ones), which the
// external-provisioner and external-resizer pass with each call. A Secret
// of type kubernetes.io/glusterfs made for the built-in provisioner has
// the same "key" entry and serves both.
const (
	// SecretKey holds the heketi key.
	SecretKey = "key"
	// SecretUser optionally holds the heketi user (default: the class's
	// restuser, else admin).
	SecretUser = "user"
)

// Parameters the external-provisioner adds with --extra-create-metadata;
// they name the claim so a class with volumenameprefix names its volumes
// as the built-in provisioner does.
const (
	paramPVCName      = "csi.storage.k8s.io/pvc/name"
	paramPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
)

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	// Heketi is the heketi client configuration: timeouts, inflight cap,
	// metrics hook, and the default server and credentials, used when a
	// class names none and the call carries no secrets.
	Heketi heketi.Config
	// Dial builds heketi clients; nil means volume.DialHeketi.
	Dial volume.Dialer
	// Volumes, when set, is the volume service to use (e.g. one shared
	// with a built-in provisioner in the same process, so the two share
	// one GID table); Heketi and Dial are then ignored.
	Volumes *volume.Service
}

// Controller is the CSI controller service: a thin adapter from CSI calls
// to the heketi volume service (package volume), the same one the
// built-in provisioner uses. Every call is idempotent, serialised per
// volume (a second call on a volume in use gets Aborted) and answers with
// the spec's codes; errors are words for the user (they reach claims as
// Events).
type Controller struct {
	csipb.UnimplementedControllerServer
	vols  *volume.Service
	locks *VolumeLocks
}

var _ csipb.ControllerServer = (*Controller)(nil)

// NewController returns a Controller. It makes no network call; a default
// heketi URL that cannot be used is an error now rather than at the first
// call.
func NewController(cfg ControllerConfig) (*Controller, error) {
	vols := cfg.Volumes
	if vols == nil {
		vols = volume.New(volume.Config{Default: cfg.Heketi, Dial: cfg.Dial})
	}
	if cr, ok := vols.DefaultCredentials(""); ok {
		if _, err := vols.Server(cr); err != nil {
			return nil, fmt.Errorf("default heketi server: %w", err)
		}
	}
	return &Controller{vols: vols, locks: NewVolumeLocks()}, nil
}

// Probe reports whether the default heketi server answers the default
// credentials (nil when no default server is configured: every class then
// names its own).
func (c *Controller) Probe(ctx context.Context) error {
	cr, ok := c.vols.DefaultCredentials("")
	if !ok {
		return nil
	}
	sv, err := c.vols.Server(cr)
	if err != nil {
		return err
	}
	return sv.Ping(ctx)
}

// controllerCapabilities: no PUBLISH_UNPUBLISH_VOLUME (nothing to attach:
// the CSIDriver says attachRequired false), no snapshots yet.
// SINGLE_NODE_MULTI_WRITER matches the node service's (KEP-2485: both
// services advertise it): the external-provisioner and external-resizer
// read the controller's bit, the kubelet the node's, and with both a
// ReadWriteOnce claim is SINGLE_NODE_MULTI_WRITER and a ReadWriteOncePod
// claim SINGLE_NODE_SINGLE_WRITER end to end. CreateVolume takes every
// access mode (a GlusterFS volume is shared storage), SINGLE_NODE_WRITER
// of older COs included.
var controllerCapabilities = []csipb.ControllerServiceCapability_RPC_Type{
	csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csipb.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csipb.ControllerServiceCapability_RPC_GET_CAPACITY,
	csipb.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csipb.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// ControllerGetCapabilities implements csipb.ControllerServer.
func (c *Controller) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	var caps []*csipb.ControllerServiceCapability
	for _, t := range controllerCapabilities {
		caps = append(caps, &csipb.ControllerServiceCapability{
			Type: &csipb.ControllerServiceCapability_Rpc{Rpc: &csipb.ControllerServiceCapability_RPC{Type: t}},
		})
	}
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// CreateVolume makes (or, on a retry, finds) the volume named req.Name:
// the same name and a compatible size give the same volume; the same name
// with a size it does not fit is AlreadyExists. A volume content source is
// copied with heketi's volume clone.
func (c *Controller) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), true); err != nil {
		return nil, err
	}
	cfg, err := volume.ParseClass("", req.GetParameters())
	if err != nil {
		return nil, grpcError(err)
	}
	if cfg.VolumeSource != volume.VolumeSourceCSI {
		return nil, status.Error(codes.InvalidArgument, (&volume.ParamError{Param: volume.ParamVolumeSource, Value: cfg.VolumeSource,
			Problem: "the CSI driver makes CSI volumes only; in-tree glusterfs PVs come from the built-in provisioner", Want: `drop the parameter or set it to "csi"`}).Error())
	}
	sizeGiB, err := sizeFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	topo, err := requestTopology(req.GetAccessibilityRequirements())
	if err != nil {
		return nil, err
	}
	cr, err := c.createCredentials(ctx, cfg, req.GetSecrets())
	if err != nil {
		return nil, grpcError(err)
	}
	params := req.GetParameters()
	name := volume.CSIName(cfg.NamePrefix, req.GetName(), params[paramPVCNamespace], params[paramPVCName])
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "name", req.GetName(), "heketiVolume", name)
	ctx = klog.NewContext(ctx, logger)

	keys := []string{"name/" + name}
	var source *volume.ID
	if src := req.GetVolumeContentSource(); src != nil {
		id, err := c.cloneSource(src, cr.URL)
		if err != nil {
			return nil, err
		}
		source = &id
		keys = append(keys, "id/"+id.String())
	}
	release, err := c.locks.acquireAll(keys...)
	if err != nil {
		return nil, err
	}
	defer release()

	sv, err := c.vols.Server(cr)
	if err != nil {
		return nil, grpcError(err)
	}
	var vol *volume.Volume
	if source != nil {
		// A clone an earlier attempt made is answered without checking
		// its source again (which may be gone by now).
		if vol, err = sv.Lookup(ctx, name); err == nil && vol == nil {
			vol, err = c.clone(ctx, sv, name, *source, sizeGiB, req.GetCapacityRange().GetLimitBytes(), topo)
		}
	} else {
		// Create finds (and reuses) a volume an earlier attempt made.
		vol, err = sv.Create(ctx, volume.CreateRequest{Name: name, SizeGiB: sizeGiB, Params: cfg, Topology: topo})
	}
	if err != nil {
		return nil, grpcError(err)
	}
	if err := compatible(vol, req.GetCapacityRange(), cfg, source != nil); err != nil {
		return nil, err
	}
	if err := topologyCompatible(vol, topo); err != nil {
		return nil, err
	}
	id, err := c.vols.ID(vol)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	logger.V(2).Info("Volume ready", "volumeID", id.String(), "sizeGiB", vol.SizeGiB, "reused", vol.Reused)
	return &csipb.CreateVolumeResponse{Volume: &csipb.Volume{
		VolumeId:      id.String(),
		CapacityBytes: vol.SizeBytes(),
		VolumeContext: VolumeContext(vol),
		ContentSource: req.GetVolumeContentSource(),
		// A local volume is accessible from its zone, so the CO pins it
		// there (PV node affinity); every other from every node.
		AccessibleTopology: volumeTopology(vol),
	}}, nil
}

// cloneSource checks a content source: a volume of this driver on the
// server the class makes volumes on.
func (c *Controller) cloneSource(src *csipb.VolumeContentSource, url string) (volume.ID, error) {
	if src.GetSnapshot() != nil {
		return volume.ID{}, status.Error(codes.InvalidArgument, "volume content source is a snapshot: glusterkube's CSI driver has no snapshots; clone a volume instead")
	}
	if src.GetVolume() == nil {
		return volume.ID{}, status.Error(codes.InvalidArgument, "volume content source names neither a volume nor a snapshot")
	}
	id, err := volume.ParseID(src.GetVolume().GetVolumeId())
	if err != nil {
		// Not an id this driver gives: no such volume exists.
		return volume.ID{}, status.Errorf(codes.NotFound, "source volume: %v", err)
	}
	if from := c.vols.ServerURL(id); from != url {
		return volume.ID{}, status.Errorf(codes.InvalidArgument, "source volume %s is on heketi %s but the class makes volumes on %s: heketi clones within one server only", id, from, url)
	}
	return id, nil
}

func (c *Controller) clone(ctx context.Context, sv *volume.Server, name string, source volume.ID, sizeGiB int, limit int64, topo volume.Topology) (*volume.Volume, error) {
	src, err := sv.Get(ctx, source.Heketi)
	if err != nil {
		if volume.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "source volume %s: %v", source, err)
		}
		return nil, err
	}
	// A clone's bricks are snapshots of its source's: it stays in the
	// source's zone.
	if err := topologyCompatible(src, topo); err != nil {
		return nil, status.Errorf(codes.ResourceExhausted, "source volume %s is in zone %s, and a clone stays with its source, which the requisite topologies (zones %v) do not allow", source, src.Zone, topo.Allowed)
	}
	if limit > 0 && src.SizeBytes() > limit {
		return nil, status.Errorf(codes.OutOfRange, "source volume %s is %d GiB, more than limit_bytes %d: a clone is at least as large as its source", source, src.SizeGiB, limit)
	}
	return sv.Clone(ctx, volume.CloneRequest{Name: name, Source: source.Heketi, SizeGiB: sizeGiB})
}

// DeleteVolume deletes the volume an id names. It needs nothing but the
// id (and, for a server other than the default, its key in the secrets),
// so it works after the class is gone; a volume already gone, or an id
// this driver never gave, is success.
func (c *Controller) DeleteVolume(ctx context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "volumeID", req.GetVolumeId())
	ctx = klog.NewContext(ctx, logger)
	id, err := volume.ParseID(req.GetVolumeId())
	if err != nil {
		logger.V(2).Info("Not a glusterkube volume id: nothing to delete", "reason", err.Error())
		return &csipb.DeleteVolumeResponse{}, nil
	}
	release, err := c.locks.acquireAll("id/" + id.String())
	if err != nil {
		return nil, err
	}
	defer release()
	sv, err := c.idServer(id, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if err := sv.Delete(ctx, id.Heketi, ""); err != nil {
		return nil, grpcError(err)
	}
	return &csipb.DeleteVolumeResponse{}, nil
}

// ControllerExpandVolume grows the volume to at least the required size
// (heketi sizes in whole GiB), never twice: a retry after a timed-out
// expansion reads the size again, and an expansion still running in
// heketi is Aborted. GlusterFS needs nothing on the node.
func (c *Controller) ControllerExpandVolume(ctx context.Context, req *csipb.ControllerExpandVolumeRequest) (*csipb.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range is required")
	}
	if vc := req.GetVolumeCapability(); vc != nil {
		if err := checkCapabilities([]*csipb.VolumeCapability{vc}, true); err != nil {
			return nil, err
		}
	}
	id, err := volume.ParseID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "%v", err)
	}
	sizeGiB, err := sizeFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	ctx = klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), "volumeID", req.GetVolumeId()))
	release, err := c.locks.acquireAll("id/" + id.String())
	if err != nil {
		return nil, err
	}
	defer release()
	sv, err := c.idServer(id, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	vol, err := sv.Expand(ctx, id.Heketi, sizeGiB)
	if err != nil {
		return nil, grpcError(err)
	}
	return &csipb.ControllerExpandVolumeResponse{CapacityBytes: vol.SizeBytes(), NodeExpansionRequired: false}, nil
}

// ValidateVolumeCapabilities confirms the capabilities GlusterFS volumes
// have: a file system (mounted with the FUSE client) in every access
// mode; no block volumes.
func (c *Controller) ValidateVolumeCapabilities(ctx context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	id, err := volume.ParseID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "%v", err)
	}
	sv, err := c.idServer(id, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	vol, err := sv.Get(ctx, id.Heketi)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), false); err != nil {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	if v, ok := req.GetVolumeContext()[ContextVolume]; ok && v != vol.Name {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: fmt.Sprintf("volume context names GlusterFS volume %q, but volume %s is %q", v, id, vol.Name)}, nil
	}
	if len(req.GetParameters()) > 0 {
		if _, err := volume.ParseClass("", req.GetParameters()); err != nil {
			return &csipb.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// ListVolumes pages through the default heketi server's volumes in the
// order of their ids. The token is the heketi id of the last volume of the
// previous page (it need not exist any more); anything else is Aborted, as
// the spec asks for a token the plugin did not give.
func (c *Controller) ListVolumes(ctx context.Context, req *csipb.ListVolumesRequest) (*csipb.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_entries %d is negative", req.GetMaxEntries())
	}
	token := req.GetStartingToken()
	if token != "" {
		if id, err := volume.ParseID(token); err != nil || id.URL != "" {
			return nil, status.Errorf(codes.Aborted, "starting_token %q is not one this driver gave: start again without a token", token)
		}
	}
	cr, ok := c.vols.DefaultCredentials("")
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not set: the driver lists the volumes of its default heketi server only", heketi.SettingURL)
	}
	sv, err := c.vols.Server(cr)
	if err != nil {
		return nil, grpcError(err)
	}
	page, err := sv.List(ctx, token, int(req.GetMaxEntries()))
	if err != nil {
		if volume.IsInvalid(err) {
			return nil, status.Error(codes.Aborted, err.Error())
		}
		return nil, grpcError(err)
	}
	resp := &csipb.ListVolumesResponse{NextToken: page.Next}
	for _, v := range page.Volumes {
		id, err := c.vols.ID(v)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.Entries = append(resp.Entries, &csipb.ListVolumesResponse_Entry{Volume: &csipb.Volume{
			VolumeId: id.String(), CapacityBytes: v.SizeBytes(), VolumeContext: VolumeContext(v),
		}})
	}
	return resp, nil
}

// GetCapacity is the room heketi has for new volumes of a class (see
// volume.Server.Capacity): its free device space in the clusters the
// class may use over what each byte of such a volume takes. Capabilities
// GlusterFS volumes cannot have get 0.
func (c *Controller) GetCapacity(ctx context.Context, req *csipb.GetCapacityRequest) (*csipb.GetCapacityResponse, error) {
	if checkCapabilities(req.GetVolumeCapabilities(), false) != nil {
		return &csipb.GetCapacityResponse{AvailableCapacity: 0}, nil
	}
	cfg, err := volume.ParseClass("", req.GetParameters())
	if err != nil {
		return nil, grpcError(err)
	}
	// GetCapacity carries no secrets: the class's or the default
	// credentials must do.
	cr, err := c.vols.ClassCredentials(ctx, "", cfg, noSecretReader)
	if err != nil {
		return nil, grpcError(err)
	}
	sv, err := c.vols.Server(cr)
	if err != nil {
		return nil, grpcError(err)
	}
	free, err := sv.Capacity(ctx, cfg)
	if err != nil {
		return nil, grpcError(err)
	}
	return &csipb.GetCapacityResponse{AvailableCapacity: free}, nil
}

// createCredentials: the call's secrets (the Secret the class names with
// csi.storage.k8s.io/provisioner-secret-name), else the class's own
// (restuserkey) or the default server's.
func (c *Controller) createCredentials(ctx context.Context, cfg *volume.ClassConfig, secrets map[string]string) (volume.Credentials, error) {
	if len(secrets) == 0 || (cfg.AuthEnabled != nil && !*cfg.AuthEnabled) {
		return c.vols.ClassCredentials(ctx, "", cfg, noSecretReader)
	}
	key := secrets[SecretKey]
	if key == "" {
		return volume.Credentials{}, status.Errorf(codes.InvalidArgument, "the CSI secrets have no %q entry: the Secret the StorageClass names with csi.storage.k8s.io/provisioner-secret-name must hold the heketi key under %q (and may hold the user under %q)", SecretKey, SecretKey, SecretUser)
	}
	url := cfg.URL
	if url == "" {
		url = c.vols.DefaultURL()
	}
	if url == "" {
		return volume.Credentials{}, volume.NoURL("")
	}
	user := secrets[SecretUser]
	if user == "" {
		user = cfg.User
	}
	if user == "" {
		user = volume.DefaultUser
	}
	return volume.Credentials{URL: url, User: user, Key: key}, nil
}

// noSecretReader answers for a class that names a Secret by the in-tree
// secretNamespace/secretName: the driver reads no Secrets itself.
func noSecretReader(_ context.Context, ns, name string) (string, error) {
	return "", &volume.ParamError{Param: volume.ParamSecretName, Value: name,
		Problem: "the CSI driver reads no Secrets itself, and the call carried none",
		Want:    fmt.Sprintf("also set csi.storage.k8s.io/provisioner-secret-name: %s and csi.storage.k8s.io/provisioner-secret-namespace: %s (and the controller-expand-secret ones), so the external-provisioner passes the key", name, ns)}
}

// idServer is the heketi server a volume id names, with the call's
// secrets, else the default credentials when it is the default server,
// else none (a heketi without auth).
func (c *Controller) idServer(id volume.ID, secrets map[string]string) (*volume.Server, error) {
	url := c.vols.ServerURL(id)
	if url == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is on the default heketi server, and %s is not set", id, heketi.SettingURL)
	}
	cr, ok := c.vols.DefaultCredentials(url)
	if key := secrets[SecretKey]; key != "" {
		cr = volume.Credentials{URL: url, User: secrets[SecretUser], Key: key}
		if cr.User == "" {
			cr.User = volume.DefaultUser
		}
	} else if !ok {
		cr = volume.Credentials{URL: url}
	}
	sv, err := c.vols.Server(cr)
	if err != nil {
		return nil, grpcError(err)
	}
	return sv, nil
}

// sizeFor turns a capacity range into whole GiB: the smallest size of at
// least required_bytes (1 GiB when none is asked for) that fits
// limit_bytes.
func sizeFor(r *csipb.CapacityRange) (int, error) {
	req, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || limit < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "capacity_range has a negative size (required_bytes %d, limit_bytes %d)", req, limit)
	}
	if limit > 0 && req > limit {
		return 0, status.Errorf(codes.InvalidArgument, "capacity_range required_bytes %d is more than limit_bytes %d", req, limit)
	}
	gib, err := volume.SizeGiB(req)
	if err != nil {
		return 0, status.Error(codes.OutOfRange, err.Error())
	}
	if limit > 0 && int64(gib)*volume.GiB > limit {
		return 0, status.Errorf(codes.OutOfRange, "heketi sizes volumes in whole GiB: the smallest volume of at least %d bytes is %d GiB, more than limit_bytes %d", req, gib, limit)
	}
	return gib, nil
}

// compatible checks that a volume found by name is one the request could
// have made; otherwise the name is AlreadyExists.
func compatible(vol *volume.Volume, r *csipb.CapacityRange, cfg *volume.ClassConfig, clone bool) error {
	size := vol.SizeBytes()
	if size < r.GetRequiredBytes() || (r.GetLimitBytes() > 0 && size > r.GetLimitBytes()) {
		return status.Errorf(codes.AlreadyExists, "a volume named %s exists with %d GiB, outside the capacity range asked for (required_bytes %d, limit_bytes %d)", vol.Name, vol.SizeGiB, r.GetRequiredBytes(), r.GetLimitBytes())
	}
	if !clone && vol.Durability.Type != "" && !sameDurability(vol.Durability, cfg) {
		return status.Errorf(codes.AlreadyExists, "a volume named %s exists with another volume type than the class asks for", vol.Name)
	}
	return nil
}

func sameDurability(d api.VolumeDurabilityInfo, cfg *volume.ClassConfig) bool {
	w := cfg.Durability
	if d.Type != w.Type {
		return false
	}
	return d.Replicate.Replica == w.Replicate.Replica && d.Disperse == w.Disperse
}

// checkCapabilities accepts what GlusterFS volumes are: a mounted file
// system (fs_type empty or glusterfs), in any access mode; required says
// that an empty list is an error too. Its errors are InvalidArgument
// statuses (ValidateVolumeCapabilities turns them into a message).
func checkCapabilities(caps []*csipb.VolumeCapability, required bool) error {
	if required && len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	for _, vc := range caps {
		if vc.GetBlock() != nil {
			return status.Error(codes.InvalidArgument, "block volumes are not supported: GlusterFS volumes are file systems (use volumeMode: Filesystem)")
		}
		m := vc.GetMount()
		if m == nil {
			return status.Error(codes.InvalidArgument, "volume capability has no access type: set mount")
		}
		if fs := m.GetFsType(); fs != "" && fs != "glusterfs" {
			return status.Errorf(codes.InvalidArgument, "fs_type %q is not supported: GlusterFS volumes are mounted with the glusterfs FUSE client (leave fs_type empty)", fs)
		}
		if vc.GetAccessMode().GetMode() == csipb.VolumeCapability_AccessMode_UNKNOWN {
			return status.Error(codes.InvalidArgument, "volume capability has no access mode")
		}
	}
	return nil
}

// grpcError maps the volume service's error classes to the spec's codes.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case volume.IsInvalid(err):
		code = codes.InvalidArgument
	case volume.IsNoSpace(err), volume.IsGIDExhausted(err), volume.IsPlacement(err):
		code = codes.ResourceExhausted
	case volume.IsInFlight(err):
		code = codes.Aborted
	case volume.IsNotFound(err):
		code = codes.NotFound
	case volume.IsCredentialsRefused(err):
		code = codes.PermissionDenied
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case volume.IsOutcomeUnknown(err), heketi.IsTransient(err):
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}
