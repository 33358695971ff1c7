package volume

import (
	"context"
	"fmt"
	"sync"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Heketi is the part of a heketi server the volume service uses. The real
// one is *heketi.Client; unit tests fake failures with their own (package
// fakeheketi).
type Heketi interface {
	VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error)
	VolumeInfo(ctx context.Context, id string) (*api.VolumeInfoResponse, error)
	VolumeList(ctx context.Context) (*api.VolumeListResponse, error)
	VolumeDelete(ctx context.Context, id string) error
	VolumeExpand(ctx context.Context, id string, req *api.VolumeExpandRequest) (*api.VolumeInfoResponse, error)
	VolumeClone(ctx context.Context, id string, req *api.VolumeCloneRequest) (*api.VolumeInfoResponse, error)
	ClusterList(ctx context.Context) (*api.ClusterListResponse, error)
	ClusterInfo(ctx context.Context, id string) (*api.ClusterInfoResponse, error)
	NodeInfo(ctx context.Context, id string) (*api.NodeInfoResponse, error)
}

// PendingOperations is heketi's view of operations still in progress
// (admin only). A Heketi that lacks it is taken to have none.
type PendingOperations interface {
	PendingOperationList(ctx context.Context) (*api.PendingOperationListResponse, error)
	PendingOperationDetails(ctx context.Context, id string) (*api.PendingOperationDetails, error)
}

var (
	_ Heketi            = (*heketi.Client)(nil)
	_ PendingOperations = (*heketi.Client)(nil)
)

// Dialer builds a Heketi for one server and credentials.
type Dialer func(cfg heketi.Config) (Heketi, error)

// DialHeketi is the default Dialer: the context-aware heketi client.
func DialHeketi(cfg heketi.Config) (Heketi, error) {
	c, err := heketi.New(cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

type clientKey struct{ url, user, key string }

// clients caches one Heketi per server and credentials, so the inflight
// cap of each is shared by all volumes that use it.
type clients struct {
	base heketi.Config
	dial Dialer

	mu       sync.Mutex
	m        map[clientKey]Heketi
	verified map[clientKey]bool
}

func (c *clients) get(cr Credentials) (Heketi, error) {
	k := clientKey{cr.URL, cr.User, cr.Key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.m[k]; ok {
		return h, nil
	}
	cfg := c.base
	cfg.URL, cfg.User, cfg.Key = cr.URL, cr.User, cr.Key
	h, err := c.dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("heketi client for %s: %w", cr.URL, err)
	}
	if c.m == nil {
		c.m = map[clientKey]Heketi{}
	}
	c.m[k] = h
	return h, nil
}

// verifyAdmin checks once per credentials that they may do more than
// create volumes. Heketi's 'user' account may POST /volumes but not poll
// the operation, read or delete the result: a create with it leaks a
// volume, so it must never be attempted.
func (c *clients) verifyAdmin(ctx context.Context, cr Credentials, h Heketi) error {
	k := clientKey{cr.URL, cr.User, cr.Key}
	c.mu.Lock()
	ok := c.verified[k]
	c.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := h.ClusterList(ctx); err != nil {
		if IsCredentialsRefused(err) {
			return adminRequired(cr, err)
		}
		return fmt.Errorf("reach heketi %s: %w", cr.URL, err)
	}
	c.mu.Lock()
	if c.verified == nil {
		c.verified = map[clientKey]bool{}
	}
	c.verified[k] = true
	c.mu.Unlock()
	return nil
}

// adminRequired turns heketi's "Administrator access required" (or a
// rejected key) into an error saying what to do. It wraps err, so
// IsCredentialsRefused still holds.
func adminRequired(cr Credentials, err error) error {
	if heketi.IsUnauthorized(err) {
		return fmt.Errorf("heketi %s rejected the credentials of user %q (%w): check the key in the Secret or %s", cr.URL, cr.User, err, heketi.SettingCredentials)
	}
	return fmt.Errorf("heketi %s refused user %q (%w): glusterkube needs heketi's admin user, because the 'user' account may create volumes but not read or delete them (they would leak); set restuser: admin with its key in the Secret, or set %s to heketi's admin", cr.URL, cr.User, err, heketi.SettingCredentials)
}

// wrapHeketi words a heketi failure of op on a volume, turning refused
// credentials into what to do.
func wrapHeketi(cr Credentials, err error, format string, args ...any) error {
	if IsCredentialsRefused(err) {
		return adminRequired(cr, err)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
