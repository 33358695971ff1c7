package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/volume"
)

// Annotations this package puts on PVs and claims.
const (
	// AnnMigratedFrom marks a PV converted from the glusterfs source; its
	// value is the old source ("glusterfs <endpoints ns>/<name> <path>").
	AnnMigratedFrom = "glusterkube.io/migrated-from"
	// AnnMigration ties a PV made by a conversion (or a restore) to its
	// record: the UID of the PV it replaces.
	AnnMigration = "glusterkube.io/migration"
	// AnnRestored marks an old PV created again by Restore.
	AnnRestored = "glusterkube.io/migration-restored"
	// AnnReclaimPolicy holds a PV's own reclaim policy while the
	// conversion keeps it Retain.
	AnnReclaimPolicy = "glusterkube.io/migration-reclaim-policy"
	// AnnMigrating is on a claim while its PV is converted: the PV's name,
	// then "<pv> rebind <time>" when bind touches the claim.
	AnnMigrating = "glusterkube.io/migrating"
)

// Defaults of Config.
const (
	DefaultRecordNamespace = "glusterkube"
	DefaultParallel        = 4
	DefaultBindTimeout     = 2 * time.Minute
)

// Step names a step of a conversion (see the package doc).
type Step string

// The steps, in order.
const (
	StepRetain  Step = "retain"
	StepRecord  Step = "record"
	StepDelete  Step = "delete"
	StepCreate  Step = "create"
	StepBind    Step = "bind"
	StepReclaim Step = "reclaim"
	StepForget  Step = "forget"
	StepCleanup Step = "cleanup"
)

// Steps lists the steps in order.
var Steps = []Step{StepRetain, StepRecord, StepDelete, StepCreate, StepBind, StepReclaim, StepForget, StepCleanup}

// Config configures a Migrator.
type Config struct {
	// Kube is the cluster.
	Kube kubernetes.Interface
	// Heketi is the default heketi server and credentials: used for PVs
	// whose class is gone and that record no server, and to look up
	// static PVs' volumes by name.
	Heketi heketi.Config
	// Dial builds heketi clients; nil means volume.DialHeketi.
	Dial volume.Dialer
	// ProvisionerName is the glusterkube provisioner that owns converted
	// dynamically provisioned PVs (deletes their heketi volume when their
	// claim goes and the policy is Delete); provisioner.DefaultName when
	// empty.
	ProvisionerName string
	// RecordNamespace holds the records of conversions in flight
	// (DefaultRecordNamespace when empty). It must exist.
	RecordNamespace string
	// Parallel is how many PVs are converted at once (DefaultParallel).
	Parallel int
	// BindTimeout bounds the wait for a claim to be Bound to its new PV
	// (DefaultBindTimeout).
	BindTimeout time.Duration
	// AfterStep, when set, runs after each step of each conversion; an
	// error stops that conversion right there, as a crash would (nothing
	// is undone). Tests use it to interrupt conversions.
	AfterStep func(ctx context.Context, pv string, step Step) error
}

// Migrator plans and applies conversions.
type Migrator struct {
	cfg  Config
	vols *volume.Service
}

// New returns a Migrator. It makes no network call.
func New(cfg Config) (*Migrator, error) {
	if cfg.Kube == nil {
		return nil, errors.New("migrate: no Kubernetes client")
	}
	if cfg.ProvisionerName == "" {
		cfg.ProvisionerName = provisioner.DefaultName
	}
	if cfg.ProvisionerName == provisioner.InTreeName {
		return nil, fmt.Errorf("migrate: the provisioner that owns converted PVs must be glusterkube's, not %s (which Kubernetes 1.26 and later no longer has)", provisioner.InTreeName)
	}
	if cfg.RecordNamespace == "" {
		cfg.RecordNamespace = DefaultRecordNamespace
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = DefaultBindTimeout
	}
	return &Migrator{cfg: cfg, vols: volume.New(volume.Config{Default: cfg.Heketi, Dial: cfg.Dial})}, nil
}

func (m *Migrator) after(ctx context.Context, pv string, step Step) error {
	if m.cfg.AfterStep == nil {
		return nil
	}
	return m.cfg.AfterStep(ctx, pv, step)
}
