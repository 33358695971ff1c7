package csi

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
)

// Pod information the kubelet adds to the volume context when the
// CSIDriver object sets podInfoOnMount: the pod whose volume is published.
const (
	contextPodName      = "csi.storage.k8s.io/pod.name"
	contextPodNamespace = "csi.storage.k8s.io/pod.namespace"
	contextPodUID       = "csi.storage.k8s.io/pod.uid"
)

// publish is a checked NodePublishVolume request.
type publish struct {
	VolumeID string
	Target   string
	// Servers are the volfile servers, primary first, without repeats.
	Servers  []string
	Volume   string
	ReadOnly bool
	// SingleWriter: the access mode is SINGLE_NODE_SINGLE_WRITER, so no
	// other target of this node may have the volume.
	SingleWriter bool
	// Flags are the mount flags of the volume capability (the class's
	// mountOptions), split at commas.
	Flags []string
	Pod   *podRef
}

// podRef names the pod a publish is for.
type podRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// source is what mount.glusterfs takes: primary:/volume.
func (p *publish) source() string { return p.Servers[0] + ":/" + p.Volume }

var (
	// A storage host: a DNS name or an IPv4 address. IPv6 literals are
	// refused: mount.glusterfs separates backup servers with colons.
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	// A GlusterFS volume name (glusterd allows letters, digits, - and _).
	volumePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	// A mount flag mount.glusterfs can take: no blanks, quotes or shell
	// characters (it runs its arguments unquoted through the shell).
	flagPattern = regexp.MustCompile(`^[A-Za-z0-9_.:=/@%+~-]+$`)
)

// parseServers splits the servers context value: trimmed, empty entries
// dropped, repeats dropped (glusterfs refuses a volfile server given twice:
// "failed to set volfile server: File exists").
func parseServers(v string) ([]string, error) {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !hostPattern.MatchString(s) {
			return nil, fmt.Errorf("volume context %q: %q is not a host name or IPv4 address", ContextServers, s)
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("volume context %q is missing or empty: the PV's volumeAttributes must name the GlusterFS servers (comma-separated)", ContextServers)
	}
	return out, nil
}

// parsePublish checks a NodePublishVolume request; its errors are for
// InvalidArgument.
func parsePublish(req *csipb.NodePublishVolumeRequest) (*publish, error) {
	p := &publish{VolumeID: req.GetVolumeId(), Target: req.GetTargetPath(), ReadOnly: req.GetReadonly()}
	if p.VolumeID == "" {
		return nil, fmt.Errorf("volume_id is missing")
	}
	if p.Target == "" {
		return nil, fmt.Errorf("target_path is missing")
	}
	if !filepath.IsAbs(p.Target) {
		return nil, fmt.Errorf("target_path %q is not an absolute path", p.Target)
	}
	p.Target = filepath.Clean(p.Target)
	vc := req.GetVolumeCapability()
	if vc == nil {
		return nil, fmt.Errorf("volume_capability is missing")
	}
	if err := checkCapability(vc); err != nil {
		return nil, err
	}
	switch vc.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		p.ReadOnly = true
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER:
		p.SingleWriter = true
	}
	for _, f := range vc.GetMount().GetMountFlags() {
		for o := range strings.SplitSeq(f, ",") {
			if o = strings.TrimSpace(o); o == "" {
				continue
			}
			if !flagPattern.MatchString(o) {
				return nil, fmt.Errorf("mount flag %q (from the StorageClass's mountOptions) has blanks, quotes or shell characters, which the GlusterFS mount helper cannot take", o)
			}
			p.Flags = append(p.Flags, o)
		}
	}
	ctx := req.GetVolumeContext()
	servers, err := parseServers(ctx[ContextServers])
	if err != nil {
		return nil, err
	}
	p.Servers = servers
	p.Volume = strings.TrimPrefix(strings.TrimSpace(ctx[ContextVolume]), "/")
	if p.Volume == "" {
		return nil, fmt.Errorf("volume context %q is missing: the PV's volumeAttributes must name the GlusterFS volume", ContextVolume)
	}
	if !volumePattern.MatchString(p.Volume) {
		return nil, fmt.Errorf("volume context %q: %q is not a GlusterFS volume name", ContextVolume, p.Volume)
	}
	if name := ctx[contextPodName]; name != "" {
		p.Pod = &podRef{Namespace: ctx[contextPodNamespace], Name: name, UID: ctx[contextPodUID]}
	}
	return p, nil
}

// checkCapability accepts mounted file systems of type glusterfs (or
// unset) in every access mode: a GlusterFS volume is shared storage.
func checkCapability(vc *csipb.VolumeCapability) error {
	if vc.GetBlock() != nil {
		return fmt.Errorf("volume_capability: block access is not supported: GlusterFS volumes are mounted as file systems")
	}
	m := vc.GetMount()
	if m == nil {
		return fmt.Errorf("volume_capability: access type mount is missing")
	}
	if fs := m.GetFsType(); fs != "" && fs != "glusterfs" {
		return fmt.Errorf("volume_capability: fs_type %q: GlusterFS volumes can only be mounted as glusterfs", fs)
	}
	if vc.GetAccessMode() == nil || vc.GetAccessMode().GetMode() == csipb.VolumeCapability_AccessMode_UNKNOWN {
		return fmt.Errorf("volume_capability: access_mode is missing")
	}
	return nil
}

// mountOptions returns the options of the mount: the defaults (the FUSE
// client unmounts when it dies, logs errors only to a file of the volume,
// knows the backup volfile servers), overridden key by key by the mount
// flags, and ro when the publish is read-only.
func mountOptions(p *publish, logDir string) []string {
	type opt struct{ key, value string }
	var defaults []opt
	defaults = append(defaults, opt{"auto_unmount", "auto_unmount"}, opt{"log-level", "log-level=ERROR"})
	if logDir != "" {
		defaults = append(defaults, opt{"log-file", "log-file=" + filepath.Join(logDir, p.Volume+".log")})
	}
	if len(p.Servers) > 1 {
		defaults = append(defaults, opt{"backup-volfile-servers", "backup-volfile-servers=" + strings.Join(p.Servers[1:], ":")})
	}
	flagKeys := map[string]bool{}
	for _, f := range p.Flags {
		k, _, _ := strings.Cut(f, "=")
		flagKeys[k] = true
	}
	// The older single backup server option replaces the list.
	if flagKeys["backupvolfile-server"] {
		flagKeys["backup-volfile-servers"] = true
	}
	var out []string
	for _, d := range defaults {
		if !flagKeys[d.key] {
			out = append(out, d.value)
		}
	}
	for _, f := range p.Flags {
		if p.ReadOnly && f == "rw" {
			continue
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if p.ReadOnly && !slices.Contains(out, "ro") {
		out = append(out, "ro")
	}
	return out
}
