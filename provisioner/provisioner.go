package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
)

// DefaultName is the provisioner name StorageClasses put in provisioner:.
const DefaultName = "glusterkube.io/glusterfs"

// Config configures a Provisioner.
type Config struct {
	// Name is the provisioner name (DefaultName when empty).
	Name string
	// Kube is the cluster.
	Kube kubernetes.Interface
	// Heketi is the base heketi client configuration: timeouts, inflight
	// cap, metrics hook, and the default server and credentials, used when
	// a class names none.
	Heketi heketi.Config
	// Dial builds heketi clients; nil means volume.DialHeketi.
	Dial volume.Dialer
	// Volumes, when set, is the volume service to use (e.g. one shared
	// with the CSI controller in the same process, so that the two share
	// one GID table); Heketi still gives the default server's URL and
	// credentials for PVs' records, Dial is ignored.
	Volumes *volume.Service
	// Recorder records glusterkube's own Events; nil records none.
	Recorder record.EventRecorder
	// InTreeClasses says whether to serve claims of StorageClasses with
	// provisioner: kubernetes.io/glusterfs and delete the PVs the in-tree
	// plugin made ("" is InTreeAuto: when the API server is 1.26 or newer).
	InTreeClasses InTreeClasses
	// AfterVolumeCreate, when set, runs right after heketi created a
	// volume and before anything else; an error aborts Provision as a
	// crash would. Tests use it to kill the provisioner at that point.
	AfterVolumeCreate func(ctx context.Context, pvName, volumeID string) error
}

// Provisioner creates and deletes heketi volumes for the library's
// ProvisionController: a thin adapter from claims and PVs to the volume
// service.
type Provisioner struct {
	cfg  Config
	vols *volume.Service

	gidMu    sync.Mutex
	gidBuilt bool

	inTreeMu       sync.Mutex
	inTreeResolved bool
	inTreeServe    bool
}

var (
	_ controller.Provisioner = (*Provisioner)(nil)
)

// UseRecorder sets the recorder of glusterkube's own Events, unless the
// Provisioner was built with one. Call it before the controllers run.
func (p *Provisioner) UseRecorder(r record.EventRecorder) {
	if p.cfg.Recorder == nil {
		p.cfg.Recorder = r
	}
}

// New returns a Provisioner. It makes no network call.
func New(cfg Config) (*Provisioner, error) {
	if cfg.Kube == nil {
		return nil, errors.New("provisioner: no Kubernetes client")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	vols := cfg.Volumes
	if vols == nil {
		vols = volume.New(volume.Config{Default: cfg.Heketi, Dial: cfg.Dial})
	}
	return &Provisioner{cfg: cfg, vols: vols}, nil
}

// Name returns the provisioner name.
func (p *Provisioner) Name() string { return p.cfg.Name }

// ensureGIDs fills the GID table from the PVs' annotations once, so a
// restarted provisioner never hands out a GID a volume already has.
func (p *Provisioner) ensureGIDs(ctx context.Context) error {
	p.gidMu.Lock()
	defer p.gidMu.Unlock()
	if p.gidBuilt {
		return nil
	}
	list, err := p.cfg.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list PersistentVolumes to collect their GIDs: %w", err)
	}
	n := 0
	for i := range list.Items {
		pv := &list.Items[i]
		s, ok := pv.Annotations[AnnGID]
		if !ok {
			continue
		}
		gid, err := strconv.Atoi(s)
		if err != nil || gid < 0 {
			klog.FromContext(ctx).Info("Ignoring unparsable GID annotation", "pv", klog.KObj(pv), "gid", s)
			continue
		}
		p.vols.ReserveGID(gidOwner(pv), gid)
		n++
	}
	p.gidBuilt = true
	klog.FromContext(ctx).V(2).Info("Collected GIDs of existing PersistentVolumes", "count", n)
	return nil
}

// gidOwner names who holds a PV's GID: its heketi volume name when known.
func gidOwner(pv *v1.PersistentVolume) string {
	if n := heketiVolumeName(pv); n != "" {
		return n
	}
	return "pv/" + pv.Name
}

// heketiVolumeName is the heketi volume name a PV records: its annotation,
// else the glusterfs path or the CSI volume attribute.
func heketiVolumeName(pv *v1.PersistentVolume) string {
	if n := pv.Annotations[AnnHeketiVolumeName]; n != "" {
		return n
	}
	if pv.Spec.Glusterfs != nil {
		return pv.Spec.Glusterfs.Path
	}
	if isOurCSI(pv) {
		return pv.Spec.CSI.VolumeAttributes[csi.ContextVolume]
	}
	return ""
}

// isOurCSI reports a PV with a csi source of glusterkube's CSI driver.
func isOurCSI(pv *v1.PersistentVolume) bool {
	return pv.Spec.CSI != nil && pv.Spec.CSI.Driver == csi.DriverName
}

func (p *Provisioner) event(obj *v1.PersistentVolumeClaim, typ, reason, msg string) {
	if p.cfg.Recorder != nil && obj != nil {
		p.cfg.Recorder.Event(obj, typ, reason, msg)
	}
}

func (p *Provisioner) recordPV(obj *v1.PersistentVolume, typ, reason, msg string) {
	if p.cfg.Recorder != nil && obj != nil {
		p.cfg.Recorder.Event(obj, typ, reason, msg)
	}
}
