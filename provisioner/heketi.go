package provisioner

import (
	"context"
	"fmt"
	"sync"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Heketi is the part of a heketi server the provisioner uses. The real one
// is *heketi.Client; unit tests fake failures with their own.
type Heketi interface {
	VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error)
	VolumeInfo(ctx context.Context, id string) (*api.VolumeInfoResponse, error)
	VolumeDelete(ctx context.Context, id string) error
	VolumeExpand(ctx context.Context, id string, req *api.VolumeExpandRequest) (*api.VolumeInfoResponse, error)
	ClusterList(ctx context.Context) (*api.ClusterListResponse, error)
	ClusterInfo(ctx context.Context, id string) (*api.ClusterInfoResponse, error)
	NodeInfo(ctx context.Context, id string) (*api.NodeInfoResponse, error)
}

var _ Heketi = (*heketi.Client)(nil)

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

// creds says how to reach heketi for one volume. Key is never logged nor
// recorded; SecretNamespace/SecretName are, so Delete can find the key.
type creds struct {
	URL, User, Key              string
	SecretNamespace, SecretName string
}

func (c creds) secretRef() string {
	if c.SecretName == "" {
		return ""
	}
	return c.SecretNamespace + "/" + c.SecretName
}

type clientKey struct{ url, user, key string }

// clients caches one Heketi per server and credentials, so the inflight
// cap of each is shared by all claims that use it.
type clients struct {
	base heketi.Config
	dial Dialer

	mu       sync.Mutex
	m        map[clientKey]Heketi
	verified map[clientKey]bool
}

// verifyAdmin checks once per credentials that they may do more than
// create volumes. Heketi's 'user' account may POST /volumes but not poll
// the operation, read or delete the result: a create with it leaks a
// volume, so it must never be attempted.
func (c *clients) verifyAdmin(ctx context.Context, cr creds, h Heketi) error {
	k := clientKey{cr.URL, cr.User, cr.Key}
	c.mu.Lock()
	ok := c.verified[k]
	c.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := h.ClusterList(ctx); err != nil {
		if heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err) {
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

func (c *clients) get(cr creds) (Heketi, error) {
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

// classCreds resolves where and as whom a class's volumes are created:
// the class's resturl/restuser/Secret (or deprecated restuserkey), else
// the provisioner's own --heketi-* flags.
func (p *Provisioner) classCreds(ctx context.Context, class string, cfg *ClassConfig) (creds, error) {
	def := p.cfg.Heketi
	cr := creds{URL: cfg.URL}
	if cr.URL == "" {
		cr.URL = def.URL
	}
	if cr.URL == "" {
		return cr, &ParamError{Class: class, Param: ParamRESTURL, Problem: "no heketi URL: the class has no resturl and the provisioner runs without --heketi-url", Want: "resturl: http://heketi.example:8080"}
	}
	switch {
	case cfg.AuthEnabled != nil && !*cfg.AuthEnabled:
		// No credentials at all.
	case cfg.SecretName != "":
		key, err := p.readSecret(ctx, cfg.SecretNamespace, cfg.SecretName)
		if err != nil {
			return cr, err
		}
		cr.User, cr.Key = orAdmin(cfg.User), key
		cr.SecretNamespace, cr.SecretName = cfg.SecretNamespace, cfg.SecretName
	case cfg.UserKey != "":
		cr.User, cr.Key = orAdmin(cfg.User), cfg.UserKey
	case cr.URL == def.URL && (cfg.User == "" || cfg.User == def.User):
		cr.User, cr.Key = def.User, def.Key
	case cfg.User != "":
		return cr, &ParamError{Class: class, Param: ParamRESTUser, Value: cfg.User, Problem: "a heketi user without a key",
			Want: fmt.Sprintf("also set %s and %s naming a Secret of type %s with key %q", ParamSecretNamespace, ParamSecretName, SecretType, SecretKey)}
	}
	if cfg.AuthEnabled != nil && *cfg.AuthEnabled && cr.Key == "" {
		return cr, &ParamError{Class: class, Param: ParamRESTAuthEnabled, Value: "true", Problem: "authentication is on but no key is known",
			Want: fmt.Sprintf("set %s and %s, or run the provisioner with --heketi-key-file", ParamSecretNamespace, ParamSecretName)}
	}
	return cr, nil
}

// pvCreds resolves credentials for an existing PV from its annotations, so
// Delete and expansion work after the StorageClass is gone.
func (p *Provisioner) pvCreds(ctx context.Context, pv *v1.PersistentVolume) (creds, error) {
	a := pv.Annotations
	cr := creds{URL: a[AnnHeketiURL], User: a[AnnHeketiUser]}
	if cr.URL == "" {
		cr.URL = p.cfg.Heketi.URL
	}
	if cr.URL == "" {
		return cr, fmt.Errorf("PV %s has no %s annotation and the provisioner runs without --heketi-url", pv.Name, AnnHeketiURL)
	}
	if ref := a[AnnHeketiSecret]; ref != "" {
		ns, name, ok := splitRef(ref)
		if !ok {
			return cr, fmt.Errorf("PV %s annotation %s=%q is not <namespace>/<name>", pv.Name, AnnHeketiSecret, ref)
		}
		key, err := p.readSecret(ctx, ns, name)
		if err != nil {
			return cr, err
		}
		cr.Key, cr.SecretNamespace, cr.SecretName = key, ns, name
		return cr, nil
	}
	if cr.User == "" {
		return cr, nil // heketi without auth
	}
	if cr.URL == p.cfg.Heketi.URL && cr.User == p.cfg.Heketi.User && p.cfg.Heketi.Key != "" {
		cr.Key = p.cfg.Heketi.Key
		return cr, nil
	}
	// Last resort: a deprecated inline restuserkey of a class that still exists.
	if p.cfg.Kube != nil && pv.Spec.StorageClassName != "" {
		sc, err := p.cfg.Kube.StorageV1().StorageClasses().Get(ctx, pv.Spec.StorageClassName, metav1.GetOptions{})
		if err == nil {
			if cfg, perr := ParseClass(sc.Name, sc.Parameters); perr == nil && cfg.UserKey != "" {
				cr.Key = cfg.UserKey
				return cr, nil
			}
		}
	}
	return cr, fmt.Errorf("no key for heketi user %q at %s for PV %s: run the provisioner with --heketi-key-file for that server, or annotate the PV with %s=<namespace>/<secret>", cr.User, cr.URL, pv.Name, AnnHeketiSecret)
}

func (p *Provisioner) readSecret(ctx context.Context, ns, name string) (string, error) {
	s, err := p.cfg.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("heketi Secret %s/%s not found: create it with type %s and the heketi key under %q", ns, name, SecretType, SecretKey)
		}
		return "", fmt.Errorf("read heketi Secret %s/%s: %w", ns, name, err)
	}
	if string(s.Type) != SecretType {
		return "", fmt.Errorf("heketi Secret %s/%s has type %q; it must have type %s", ns, name, s.Type, SecretType)
	}
	key, ok := s.Data[SecretKey]
	if !ok || len(key) == 0 {
		return "", fmt.Errorf("heketi Secret %s/%s has no %q entry", ns, name, SecretKey)
	}
	return string(key), nil
}

func orAdmin(user string) string {
	if user == "" {
		return "admin"
	}
	return user
}

func splitRef(ref string) (ns, name string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], i > 0 && i < len(ref)-1
		}
	}
	return "", "", false
}
