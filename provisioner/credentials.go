package provisioner

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
)

// SecretType is the type the Secret named by secretName must have.
const SecretType = volume.SecretType

// SecretKey is the key in that Secret holding heketi's key.
const SecretKey = volume.SecretKey

// classCreds resolves where and as whom a class's volumes are created:
// the class's resturl/restuser/Secret (or deprecated restuserkey), else
// the provisioner's default heketi server and credentials.
func (p *Provisioner) classCreds(ctx context.Context, class string, cfg *volume.ClassConfig) (volume.Credentials, error) {
	return p.vols.ClassCredentials(ctx, class, cfg, p.readSecret)
}

// pvCreds resolves credentials for an existing PV from its annotations, so
// Delete and expansion work after the StorageClass is gone.
func (p *Provisioner) pvCreds(ctx context.Context, pv *v1.PersistentVolume) (volume.Credentials, error) {
	a := pv.Annotations
	cr := volume.Credentials{URL: a[AnnHeketiURL], User: a[AnnHeketiUser]}
	if cr.URL == "" {
		cr.URL = p.cfg.Heketi.URL
	}
	if cr.URL == "" {
		return cr, fmt.Errorf("PV %s has no %s annotation and %s is not set", pv.Name, AnnHeketiURL, heketi.SettingURL)
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
	if def, ok := p.vols.DefaultCredentials(cr.URL); ok && def.User == cr.User && def.Key != "" {
		cr.Key = def.Key
		return cr, nil
	}
	// Last resort: a deprecated inline restuserkey of a class that still exists.
	if p.cfg.Kube != nil && pv.Spec.StorageClassName != "" {
		sc, err := p.cfg.Kube.StorageV1().StorageClasses().Get(ctx, pv.Spec.StorageClassName, metav1.GetOptions{})
		if err == nil {
			if cfg, perr := volume.ParseClass(sc.Name, sc.Parameters); perr == nil && cfg.UserKey != "" {
				cr.Key = cfg.UserKey
				return cr, nil
			}
		}
	}
	return cr, fmt.Errorf("no key for heketi user %q at %s for PV %s: set %s to that server and %s to that user's, or annotate the PV with %s=<namespace>/<secret>", cr.User, cr.URL, pv.Name, heketi.SettingURL, heketi.SettingCredentials, AnnHeketiSecret)
}

// readSecret reads the heketi key from a Secret of type SecretType.
func (p *Provisioner) readSecret(ctx context.Context, ns, name string) (string, error) {
	return ReadHeketiSecret(ctx, p.cfg.Kube, ns, name)
}

// ReadHeketiSecret reads the heketi key from Secret ns/name, which must
// have type SecretType and the key under SecretKey (what the in-tree
// provisioner's classes name, and glusterkube's).
func ReadHeketiSecret(ctx context.Context, kube kubernetes.Interface, ns, name string) (string, error) {
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
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

func splitRef(ref string) (ns, name string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], i > 0 && i < len(ref)-1
		}
	}
	return "", "", false
}
