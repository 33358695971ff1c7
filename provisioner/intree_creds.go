package provisioner

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
)

// credentialParams are the class parameters that say where heketi is and
// as whom to call it.
var credentialParams = []string{
	volume.ParamRESTURL, volume.ParamRESTAuthEnabled, volume.ParamRESTUser,
	volume.ParamRESTUserKey, volume.ParamSecretNamespace, volume.ParamSecretName,
}

// CredentialParams returns the heketi server and credential parameters of
// a class (resturl, restuser, secretName...), dropping the others: a PV's
// volume is deleted or looked up with only these, so a parameter the
// in-tree plugin took that glusterkube would refuse for new volumes does
// not stand in the way.
func CredentialParams(params map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		for _, want := range credentialParams {
			if strings.EqualFold(k, want) {
				out[k] = v
			}
		}
	}
	return out
}

// inTreeCreds resolves where the volume of a PV made by the
// in-tree provisioner lives, which recorded nothing of it in the PV:
// glusterkube's annotations when a migration added them, else the
// StorageClass's resturl and Secret, else (the class is gone) the default
// heketi server and credentials.
func (p *Provisioner) inTreeCreds(ctx context.Context, pv *v1.PersistentVolume) (volume.Credentials, error) {
	if pv.Annotations[AnnHeketiURL] != "" {
		return p.pvCreds(ctx, pv)
	}
	if sc := pv.Spec.StorageClassName; sc != "" {
		class, err := p.cfg.Kube.StorageV1().StorageClasses().Get(ctx, sc, metav1.GetOptions{})
		switch {
		case err == nil:
			cfg, err := volume.ParseClass(class.Name, CredentialParams(class.Parameters))
			if err != nil {
				return volume.Credentials{}, fmt.Errorf("PV %s: %w", pv.Name, err)
			}
			return p.vols.ClassCredentials(ctx, class.Name, cfg, p.readSecret)
		case !apierrors.IsNotFound(err):
			return volume.Credentials{}, fmt.Errorf("PV %s: read StorageClass %s for its heketi server: %w", pv.Name, sc, err)
		}
	}
	cr, ok := p.vols.DefaultCredentials("")
	if !ok {
		return cr, fmt.Errorf("PV %s was made by the in-tree provisioner, its StorageClass %q is gone and %s is not set: set it to the heketi server that holds the volume", pv.Name, pv.Spec.StorageClassName, heketi.SettingURL)
	}
	return cr, nil
}

// deleteInTree deletes the heketi volume of a PV the in-tree provisioner
// made (already gone is success), refusing a volume of another name under
// the recorded id, then the claim's Service and Endpoints when nothing
// else uses them.
func (p *Provisioner) deleteInTree(ctx context.Context, pv *v1.PersistentVolume, users UsersFunc) error {
	id := InTreeVolumeID(pv)
	if id == "" {
		return fmt.Errorf("PV %s has no %s annotation and its volume name %q does not hold a heketi id: delete its heketi volume by hand, then the PV", pv.Name, AnnHeketiVolumeID, pv.Spec.Glusterfs.Path)
	}
	if err := p.ensureGIDs(ctx); err != nil {
		return err
	}
	cr, err := p.inTreeCreds(ctx, pv)
	if err != nil {
		return err
	}
	sv, err := p.vols.Server(cr)
	if err != nil {
		return err
	}
	// In-tree PVs name the volume by its heketi name: the check that the
	// id still names that volume.
	if err := sv.Delete(ctx, id, pv.Spec.Glusterfs.Path); err != nil {
		return fmt.Errorf("PV %s: %w", pv.Name, err)
	}
	kept, err := DeleteClaimEndpoints(ctx, p.cfg.Kube, pv, users)
	if err != nil {
		return fmt.Errorf("PV %s: %w", pv.Name, err)
	}
	if kept != "" {
		klog.FromContext(ctx).V(2).Info("Kept the Service and Endpoints of a deleted in-tree PV", "reason", kept)
	}
	return nil
}
