package provisioner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Provision creates (or, after a crash, finds) the claim's heketi volume,
// its Service and Endpoints, and returns the PV.
//
// The returned state tells the library whether a heketi volume may exist:
// errors before heketi was asked to create anything are NoChange; once a
// volume exists or may exist, every error is InBackground, so the library
// calls again instead of forgetting it.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	claim, class := opts.PVC, opts.StorageClass
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KObj(claim), "pv", opts.PVName)
	ctx = klog.NewContext(ctx, logger)

	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("claim %s has spec.selector, which glusterkube cannot satisfy for dynamically provisioned volumes: remove the selector", klog.KObj(claim))
	}
	if claim.Spec.DataSource != nil || claim.Spec.DataSourceRef != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("claim %s has a data source; glusterkube cannot clone or restore volumes: remove spec.dataSource", klog.KObj(claim))
	}
	cfg, err := ParseClass(class.Name, class.Parameters)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	for _, d := range cfg.Deprecated {
		p.event(claim, v1.EventTypeWarning, ReasonDeprecatedParameter, fmt.Sprintf("StorageClass %q: %s", class.Name, d))
	}
	size, err := roundUpGiB(claim.Spec.Resources.Requests[v1.ResourceStorage])
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	cr, err := p.classCreds(ctx, class.Name, cfg)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	h, err := p.clients.get(cr)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if err := p.clients.verifyAdmin(ctx, cr, h); err != nil {
		if heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err) {
			p.event(claim, v1.EventTypeWarning, ReasonHeketiAdminRequired, err.Error())
		}
		return nil, controller.ProvisioningNoChange, err
	}
	if err := p.ensureGIDs(ctx); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	srv := p.servers.get(cr.URL)
	if err := srv.ensure(ctx, h, p.gids); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}

	name := VolumeName(cfg.NamePrefix, claim, opts.PVName)
	logger = klog.LoggerWithValues(logger, "heketiVolume", name)
	ctx = klog.NewContext(ctx, logger)

	vol, state, err := p.ensureVolume(ctx, h, srv, cr, cfg, class, claim, name, size)
	if err != nil {
		return nil, state, err
	}
	if p.cfg.AfterVolumeCreate != nil {
		if err := p.cfg.AfterVolumeCreate(ctx, opts.PVName, vol.Id); err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
	}

	// The volume exists: from here every failure must be retried.
	hosts := volumeHosts(srv, vol)
	ips, err := storageIPs(ctx, hosts)
	if err != nil {
		return nil, controller.ProvisioningInBackground, fmt.Errorf("heketi volume %s (%s): %w", vol.Name, vol.Id, err)
	}
	epName, err := p.ensureEndpoints(ctx, claim, opts.PVName, cfg.EPNamePrefix, ips)
	if err != nil {
		if gone, gerr := p.claimGone(ctx, claim); gerr == nil && gone {
			// The claim (or its namespace) went away while its volume was
			// being made: nothing will ever use the volume, so remove it
			// instead of retrying forever.
			return nil, p.discard(ctx, h, srv, vol, err), fmt.Errorf("claim %s was deleted while its volume was made: %w", klog.KObj(claim), err)
		}
		return nil, controller.ProvisioningInBackground, err
	}
	pv := buildPV(opts.PVName, class, claim, vol, cr, epName, ips)
	logger.V(2).Info("Provisioned", "heketiVolumeID", vol.Id, "sizeGiB", vol.Size, "gid", vol.Gid, "endpoints", epName)
	return pv, controller.ProvisioningFinished, nil
}

// ensureVolume returns the claim's heketi volume, creating it unless an
// earlier attempt did.
func (p *Provisioner) ensureVolume(ctx context.Context, h Heketi, srv *server, cr creds, cfg *ClassConfig, class *storagev1.StorageClass, claim *v1.PersistentVolumeClaim, name string, size int) (*api.VolumeInfoResponse, controller.ProvisioningState, error) {
	logger := klog.FromContext(ctx)
	if vol, found, err := p.findVolume(ctx, h, srv, name); err != nil {
		return nil, controller.ProvisioningInBackground, err
	} else if found {
		p.reuse(claim, vol)
		return vol, controller.ProvisioningFinished, nil
	}

	gid, err := p.gids.Allocate(class.Name, name, cfg.GIDMin, cfg.GIDMax)
	if err != nil {
		var ex *GIDExhaustedError
		if errors.As(err, &ex) {
			p.event(claim, v1.EventTypeWarning, ReasonGIDRangeExhausted, err.Error())
		}
		return nil, p.noVolumeState(name), err
	}
	req := &api.VolumeCreateRequest{
		Size:                 size,
		Name:                 name,
		Clusters:             cfg.Clusters,
		Durability:           cfg.Durability,
		Gid:                  int64(gid),
		GlusterVolumeOptions: cfg.VolumeOptions,
	}
	req.Snapshot.Enable = true
	req.Snapshot.Factor = cfg.SnapFactor

	logger.V(4).Info("Creating heketi volume", "sizeGiB", size, "gid", gid)
	candidates, anyCluster := cfg.Clusters, false
	if len(candidates) == 0 {
		candidates, anyCluster = srv.clusterIDs(), true
	}
	vol, err := createInOrder(ctx, h, req, candidates, anyCluster)
	switch {
	case err == nil:
		srv.add(vol.Name, volumeRef{ID: vol.Id, Cluster: vol.Cluster, GID: vol.Gid})
		p.uncertain.Delete(name)
		logger.V(2).Info("Created heketi volume", "heketiVolumeID", vol.Id, "cluster", vol.Cluster)
		return vol, controller.ProvisioningFinished, nil

	case heketi.IsNameInUse(err):
		// An earlier attempt's volume exists (or is still being made).
		srv.invalidate()
		vol, found, ferr := p.findVolume(ctx, h, srv, name)
		if ferr != nil {
			return nil, controller.ProvisioningInBackground, ferr
		}
		if found {
			p.reuse(claim, vol)
			return vol, controller.ProvisioningFinished, nil
		}
		p.uncertain.Store(name, true)
		return nil, controller.ProvisioningInBackground, fmt.Errorf("heketi volume %s is still being created by an earlier attempt; will retry", name)

	case heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err):
		// With the 'user' account heketi accepts the create and then
		// refuses to show its result: the volume may exist.
		p.uncertain.Store(name, true)
		srv.invalidate()
		err = adminRequired(cr, err)
		p.event(claim, v1.EventTypeWarning, ReasonHeketiAdminRequired, err.Error())
		return nil, controller.ProvisioningInBackground, err

	case heketi.IsTransient(err) || ctx.Err() != nil:
		if neverSent(err) {
			return nil, p.noVolumeState(name), fmt.Errorf("create heketi volume %s: %w", name, err)
		}
		// Timed out or cut off: heketi may still make the volume. The
		// next attempt rebuilds the index and finds it.
		p.uncertain.Store(name, true)
		srv.invalidate()
		return nil, controller.ProvisioningInBackground, fmt.Errorf("create heketi volume %s: outcome unknown, will look for it on retry: %w", name, err)

	default:
		state := p.noVolumeState(name)
		if state == controller.ProvisioningFinished {
			p.gids.Release(name)
		}
		return nil, state, fmt.Errorf("create heketi volume %s (%d GiB, %s): %w", name, size, durabilityString(cfg.Durability), err)
	}
}

// createInOrder creates the volume in one candidate cluster at a time, in
// the given order (heketi's own placement order).
//
// Heketi's volume names are unique per cluster only: given several
// clusters, it skips one that already holds the name and places the volume
// in another; and it hides a volume whose create is still running from
// every list. So after a create that timed out (or a crash), a retry that
// named several clusters would make a second volume elsewhere. Asked for
// one cluster, heketi answers "already in use" instead, which the caller
// turns into finding and reusing the first volume. A cluster that refuses
// for another reason (no space, wrong volume type) passes the request on
// to the next. With anyCluster (the class names none), a last request
// without clusters lets heketi use a cluster created since the index was
// built.
func createInOrder(ctx context.Context, h Heketi, req *api.VolumeCreateRequest, clusters []string, anyCluster bool) (*api.VolumeInfoResponse, error) {
	if len(clusters) <= 1 {
		return h.VolumeCreate(ctx, req)
	}
	var refusals []string
	var last error
	for _, c := range clusters {
		one := *req
		one.Clusters = []string{c}
		vol, err := h.VolumeCreate(ctx, &one)
		if err == nil || !refusedByCluster(err) || ctx.Err() != nil {
			return vol, err
		}
		refusals = append(refusals, fmt.Sprintf("cluster %s: %v", c, err))
		last = err
	}
	if anyCluster {
		all := *req
		all.Clusters = nil
		vol, err := h.VolumeCreate(ctx, &all)
		if err == nil || !refusedByCluster(err) {
			return vol, err
		}
		last = err
	}
	return nil, fmt.Errorf("every cluster refused (%s): %w", strings.Join(refusals, "; "), last)
}

// refusedByCluster reports a definite refusal by heketi that another
// cluster might not give: not a name in use, a credentials problem, or an
// error after which the volume may exist.
func refusedByCluster(err error) bool {
	var he *heketi.Error
	return errors.As(err, &he) && he.Status != 0 &&
		!heketi.IsNameInUse(err) && !heketi.IsAdminRequired(err) && !heketi.IsUnauthorized(err) &&
		!heketi.IsTransient(err) && !heketi.IsTimeout(err)
}

// findVolume looks the name up in the index and confirms it with heketi.
func (p *Provisioner) findVolume(ctx context.Context, h Heketi, srv *server, name string) (*api.VolumeInfoResponse, bool, error) {
	if err := srv.ensure(ctx, h, p.gids); err != nil {
		return nil, false, err
	}
	for {
		ref, ok := srv.lookup(name)
		if !ok {
			return nil, false, nil
		}
		vol, err := h.VolumeInfo(ctx, ref.ID)
		if err == nil {
			if vol.Gid > 0 {
				p.gids.Reserve(name, int(vol.Gid))
			}
			return vol, true, nil
		}
		if !heketi.IsNotFound(err) {
			return nil, false, fmt.Errorf("read heketi volume %s (%s): %w", name, ref.ID, err)
		}
		srv.remove(name, ref.ID) // deleted behind our back
	}
}

func (p *Provisioner) reuse(claim *v1.PersistentVolumeClaim, vol *api.VolumeInfoResponse) {
	p.uncertain.Delete(vol.Name)
	p.event(claim, v1.EventTypeNormal, ReasonVolumeReused, fmt.Sprintf("Using heketi volume %s (%s) created by an earlier attempt", vol.Name, vol.Id))
}

// noVolumeState is the state after heketi certainly made no volume in
// this attempt: Finished, unless an earlier attempt's outcome is unknown.
func (p *Provisioner) noVolumeState(name string) controller.ProvisioningState {
	if _, ok := p.uncertain.Load(name); ok {
		return controller.ProvisioningInBackground
	}
	return controller.ProvisioningFinished
}

// neverSent reports errors where the request cannot have reached heketi.
func neverSent(err error) bool {
	var he *heketi.Error
	if errors.As(err, &he) && (he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable) {
		return true // heketi itself turned the request away
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// volumeHosts lists the storage hosts of the volume's bricks (first), then
// the rest of the pool heketi names as mount servers.
func volumeHosts(srv *server, vol *api.VolumeInfoResponse) []string {
	var hosts []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, b := range vol.Bricks {
		if h, ok := srv.storageHost(b.NodeId); ok {
			add(h)
		}
	}
	for _, h := range vol.Mount.GlusterFS.Hosts {
		add(h)
	}
	return hosts
}

func durabilityString(d api.VolumeDurabilityInfo) string {
	switch d.Type {
	case api.DurabilityReplicate:
		return fmt.Sprintf("replicate:%d", d.Replicate.Replica)
	case api.DurabilityEC:
		return fmt.Sprintf("disperse:%d:%d", d.Disperse.Data, d.Disperse.Redundancy)
	}
	return string(d.Type)
}

// claimGone reports whether the claim no longer exists (or is another
// object of the same name).
func (p *Provisioner) claimGone(ctx context.Context, claim *v1.PersistentVolumeClaim) (bool, error) {
	cur, err := p.cfg.Kube.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return cur.UID != claim.UID, nil
}

// discard deletes the volume made for a claim that is gone and returns the
// state to report: Finished once the volume is gone, else InBackground so
// the library calls again.
func (p *Provisioner) discard(ctx context.Context, h Heketi, srv *server, vol *api.VolumeInfoResponse, cause error) controller.ProvisioningState {
	logger := klog.FromContext(ctx)
	if err := h.VolumeDelete(ctx, vol.Id); err != nil && !heketi.IsNotFound(err) {
		logger.Error(err, "Claim is gone; deleting its heketi volume failed, will retry", "heketiVolumeID", vol.Id)
		return controller.ProvisioningInBackground
	}
	srv.remove(vol.Name, vol.Id)
	p.gids.Release(vol.Name)
	p.uncertain.Delete(vol.Name)
	logger.Info("Claim is gone; deleted the heketi volume made for it", "heketiVolumeID", vol.Id, "cause", cause.Error())
	return controller.ProvisioningFinished
}
