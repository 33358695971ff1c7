package volume

import (
	"context"
	"fmt"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Config configures a Service.
type Config struct {
	// Default is the heketi client configuration: timeouts, inflight cap,
	// metrics hook, and the server and credentials used when a class
	// names none (the default heketi server).
	Default heketi.Config
	// Dial builds heketi clients; nil means DialHeketi.
	Dial Dialer
}

// Service is the heketi volume service: one per process, shared by
// everything that makes volumes in it (its GID table and per-server
// indexes must be, so that no GID is handed out twice).
type Service struct {
	cfg     Config
	clients *clients
	indexes indexes
	gids    *gidTable
}

// New returns a Service. It makes no network call.
func New(cfg Config) *Service {
	if cfg.Dial == nil {
		cfg.Dial = DialHeketi
	}
	return &Service{
		cfg:     cfg,
		clients: &clients{base: cfg.Default, dial: cfg.Dial},
		gids:    newGIDTable(),
	}
}

// ReserveGID records that the heketi volume named owner holds gid (e.g.
// from a PV annotation), so the GID is never handed out again.
func (s *Service) ReserveGID(owner string, gid int) { s.gids.Reserve(owner, gid) }

// GIDOwner returns the name of the volume holding gid.
func (s *Service) GIDOwner(gid int) (string, bool) { return s.gids.Owner(gid) }

// Server returns the handle of one heketi server used with one set of
// credentials. It makes no network call.
func (s *Service) Server(cr Credentials) (*Server, error) {
	if cr.URL == "" {
		return nil, fmt.Errorf("no heketi URL: %s is not set", heketi.SettingURL)
	}
	h, err := s.clients.get(cr)
	if err != nil {
		return nil, err
	}
	return &Server{svc: s, cr: cr, h: h, idx: s.indexes.get(cr.URL)}, nil
}

// Server is one heketi server reached with one set of credentials.
type Server struct {
	svc *Service
	cr  Credentials
	h   Heketi
	idx *index
}

// URL is the server's URL.
func (sv *Server) URL() string { return sv.cr.URL }

// Credentials are the credentials the handle uses.
func (sv *Server) Credentials() Credentials { return sv.cr }

// Prepare checks, once per credentials, that they are heketi's admin
// (a create with the 'user' account would leak its volume) and builds the
// server's index of volumes. Create calls it; callers that must tell
// "heketi was never asked to create" from later failures call it first.
func (sv *Server) Prepare(ctx context.Context) error {
	if err := sv.svc.clients.verifyAdmin(ctx, sv.cr, sv.h); err != nil {
		return err
	}
	return sv.idx.ensure(ctx, sv.h, sv.svc.gids)
}

// Ping checks that the server answers these credentials (a cheap call:
// the cluster list).
func (sv *Server) Ping(ctx context.Context) error {
	if _, err := sv.h.ClusterList(ctx); err != nil {
		return wrapHeketi(sv.cr, err, "reach heketi %s", sv.cr.URL)
	}
	return nil
}

// Volume is a heketi volume as the adapters need it.
type Volume struct {
	// ID is heketi's volume id; Name its volume name (the GlusterFS one).
	ID, Name string
	// Cluster is the heketi cluster holding it.
	Cluster string
	// SizeGiB is its size in GiB (heketi's unit).
	SizeGiB int
	// GID is the supplemental group its files belong to (0: none).
	GID int64
	// Hosts are the storage hosts to mount from: the hosts of the
	// volume's bricks first, then the rest heketi names; the first is the
	// primary volfile server.
	Hosts []string
	// Durability is its volume type.
	Durability api.VolumeDurabilityInfo
	// URL is the heketi server holding it.
	URL string
	// Reused says that Create found the volume an earlier attempt made
	// instead of creating it.
	Reused bool
	// Zone is the Kubernetes zone a local volume's bricks are confined to
	// (read back from its heketi options, so a volume found again says the
	// same); "" for a volume usable alike from every zone.
	Zone string
}

// SizeBytes is the volume's size in bytes.
func (v *Volume) SizeBytes() int64 { return int64(v.SizeGiB) * GiB }

// ID returns the volume's CSI volume id (see ID): no URL when the volume
// is on the default server.
func (s *Service) ID(v *Volume) (ID, error) {
	return NewID(v.ID, v.URL, s.cfg.Default.URL)
}

// ServerURL is the heketi server a CSI volume id names: its URL, or the
// default server's.
func (s *Service) ServerURL(id ID) string {
	if id.URL != "" {
		return id.URL
	}
	return s.cfg.Default.URL
}

func (sv *Server) volume(info *api.VolumeInfoResponse) *Volume {
	return &Volume{
		ID: info.Id, Name: info.Name, Cluster: info.Cluster, SizeGiB: info.Size, GID: info.Gid,
		Hosts: sv.hosts(info), Durability: info.Durability, URL: sv.cr.URL,
		Zone: zoneOfOptions(info.GlusterVolumeOptions),
	}
}

// hosts lists the storage hosts of the volume's bricks (first), then the
// rest of the pool heketi names as mount servers.
func (sv *Server) hosts(vol *api.VolumeInfoResponse) []string {
	var hosts []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, b := range vol.Bricks {
		if h, ok := sv.idx.storageHost(b.NodeId); ok {
			add(h)
		}
	}
	for _, h := range vol.Mount.GlusterFS.Hosts {
		add(h)
	}
	return hosts
}

// Get reads one volume; a volume heketi does not know is IsNotFound. It
// builds no index: its Hosts put the brick hosts first only when the
// server's index is already built.
func (sv *Server) Get(ctx context.Context, id string) (*Volume, error) {
	info, err := sv.h.VolumeInfo(ctx, id)
	if err != nil {
		if heketi.IsNotFound(err) {
			return nil, classify(kindNotFound, false, fmt.Errorf("heketi %s has no volume %s", sv.cr.URL, id))
		}
		return nil, wrapHeketi(sv.cr, err, "read heketi volume %s", id)
	}
	return sv.volume(info), nil
}
