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

	"github.com/glusterkube/glusterkube/internal/heketi"
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
	// cap, metrics hook, and the server and credentials used when a class
	// names none (the --heketi-* flags).
	Heketi heketi.Config
	// Dial builds heketi clients; nil means DialHeketi.
	Dial Dialer
	// Recorder records glusterkube's own Events; nil records none.
	Recorder record.EventRecorder
	// AfterVolumeCreate, when set, runs right after heketi created a
	// volume and before anything else; an error aborts Provision as a
	// crash would. Tests use it to kill the provisioner at that point.
	AfterVolumeCreate func(ctx context.Context, pvName, volumeID string) error
}

// Provisioner creates and deletes heketi volumes for the library's
// ProvisionController.
type Provisioner struct {
	cfg     Config
	clients *clients
	servers servers
	gids    *gidTable

	gidMu    sync.Mutex
	gidBuilt bool

	// uncertain holds volume names whose create had an unknown outcome.
	uncertain sync.Map
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
	if cfg.Dial == nil {
		cfg.Dial = DialHeketi
	}
	return &Provisioner{
		cfg:     cfg,
		clients: &clients{base: cfg.Heketi, dial: cfg.Dial},
		gids:    newGIDTable(),
	}, nil
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
		p.gids.Reserve(gidOwner(pv), gid)
		n++
	}
	p.gidBuilt = true
	klog.FromContext(ctx).V(2).Info("Collected GIDs of existing PersistentVolumes", "count", n)
	return nil
}

// gidOwner names who holds a PV's GID: its heketi volume name when known.
func gidOwner(pv *v1.PersistentVolume) string {
	if n := pv.Annotations[AnnHeketiVolumeName]; n != "" {
		return n
	}
	if pv.Spec.Glusterfs != nil && pv.Spec.Glusterfs.Path != "" {
		return pv.Spec.Glusterfs.Path
	}
	return "pv/" + pv.Name
}

func (p *Provisioner) event(obj *v1.PersistentVolumeClaim, typ, reason, msg string) {
	if p.cfg.Recorder != nil && obj != nil {
		p.cfg.Recorder.Event(obj, typ, reason, msg)
	}
}

func (p *Provisioner) eventPV(obj *v1.PersistentVolume, typ, reason, msg string) {
	if p.cfg.Recorder != nil && obj != nil {
		p.cfg.Recorder.Event(obj, typ, reason, msg)
	}
}

// adminRequired turns heketi's "Administrator access required" into an
// error saying what to do.
func adminRequired(cr creds, err error) error {
	if heketi.IsUnauthorized(err) {
		return fmt.Errorf("heketi %s rejected the credentials of user %q (%w): check the key in the Secret or --heketi-key-file", cr.URL, cr.User, err)
	}
	return fmt.Errorf("heketi %s refused user %q (%w): glusterkube needs heketi's admin user, because the 'user' account may create volumes but not read or delete them (they would leak); set restuser: admin with its key in the Secret, or run the provisioner with the admin key", cr.URL, cr.User, err)
}
