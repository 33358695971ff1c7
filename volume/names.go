package volume

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// volumePrefix names volumes of classes without volumenameprefix.
	volumePrefix = "vol_"
	// maxVolumeNameLen keeps glusterd's brick volfile names within the
	// 255 bytes a file name may have: glusterd names them
	// <volume>.<storage host>.<brick path>.vol, and heketi's brick paths
	// (/var/lib/heketi/mounts/vg_<id>/brick_<id>/brick) take 103 bytes, so
	// 80 leaves room for a 67-byte storage host name.
	maxVolumeNameLen = 80
	// hashLen is the length of the hash that keeps shortened or
	// sanitised names apart.
	hashLen = 8
)

// Name is the heketi volume name for a claim. It is deterministic, so a
// retry after a crash finds the volume an earlier attempt created. With a
// prefix it is <prefix>_<namespace>_<claim>_<short-uid>; without,
// vol_<pv name>.
func Name(prefix, namespace, claim, claimUID, pvName string) string {
	if prefix == "" {
		return volumePrefix + sanitizeVolumeName(pvName)
	}
	suffix := "_" + ShortUID(claimUID)
	head := prefix + "_" + sanitizeVolumeName(namespace) + "_"
	name := sanitizeVolumeName(claim)
	if room := maxVolumeNameLen - len(head) - len(suffix); len(name) > room {
		name = name[:max(room, 0)]
	}
	return head + name + suffix
}

// CSIName is the heketi volume name for a CSI CreateVolume name (which the
// external-provisioner makes "pvc-<claim uid>", the PV name). When the
// call carries the claim's namespace and name (--extra-create-metadata) it
// is the name the built-in provisioner gives the same claim, so both front
// doors name a claim's volume alike. Otherwise it is <prefix or vol>_<name>,
// ending in a hash of the name whenever the name had to be shortened or
// had characters heketi refuses, so two CSI names never share a volume.
func CSIName(prefix, name, claimNamespace, claimName string) string {
	if prefix != "" && claimNamespace != "" && claimName != "" {
		return Name(prefix, claimNamespace, claimName, strings.TrimPrefix(name, "pvc-"), name)
	}
	head := volumePrefix
	if prefix != "" {
		head = prefix + "_"
	}
	body := sanitizeVolumeName(name)
	if body == name && len(head)+len(body) <= maxVolumeNameLen {
		return head + body
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:hashLen]
	if room := maxVolumeNameLen - len(head) - len(suffix); len(body) > room {
		body = body[:max(room, 0)]
	}
	return head + body + suffix
}

// ShortUID is the first 8 hex digits of a UID: enough to tell apart
// claims of the same name made one after another.
func ShortUID(uid string) string {
	u := strings.ReplaceAll(uid, "-", "")
	if len(u) > hashLen {
		u = u[:hashLen]
	}
	return strings.ToLower(u)
}

// sanitizeVolumeName keeps what heketi accepts in names: [a-zA-Z0-9_-].
func sanitizeVolumeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
