package topology

import (
	"fmt"
	"net"
	"regexp"
	"unicode/utf8"

	validation "github.com/go-ozzo/ozzo-validation"
	"github.com/go-ozzo/ozzo-validation/is"
	kvalidation "k8s.io/apimachinery/pkg/util/validation"
)

// heketi v10.3.0's own rules (pkg/glusterfs/api/types.go), checked before
// the first call so that a file heketi would refuse changes nothing.
var (
	deviceNameRe = regexp.MustCompile("^/[a-zA-Z0-9_.:/-]+$")
	tagNameRe    = regexp.MustCompile("^[a-zA-Z0-9_.-]+$")
)

const (
	maxTags        = 32
	maxTagNameLen  = 32
	maxTagValueLen = 64
)

// checkHost applies heketi's hostname rule (ozzo-validation's is.Host: an
// IP address or a DNS name). It returns "" when h is fine.
func checkHost(h string) string {
	if h == "" {
		return "is empty; expected a host name or IP address"
	}
	if err := validation.Validate(h, validation.Required, is.Host); err != nil {
		return fmt.Sprintf("%q is not a valid host name or IP address (heketi refuses it)", h)
	}
	return ""
}

// checkNodeName warns when manage[0] cannot be a Kubernetes Node name:
// heketi's kube executor finds the glusterfs pod by it.
func checkNodeName(name string) string {
	if net.ParseIP(name) != nil {
		return fmt.Sprintf("manage hostname %q is an IP address; with heketi's kube executor manage[0] must be the Kubernetes Node name (fine with the ssh executor)", name)
	}
	if errs := kvalidation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Sprintf("manage hostname %q does not look like a Kubernetes Node name (lowercase letters, digits, '-' and '.'); with heketi's kube executor manage[0] must be the Node name", name)
	}
	return ""
}

// checkDeviceName applies heketi's device name rule.
func checkDeviceName(name string) string {
	if name == "" {
		return "the device name is empty; expected a path like /dev/sdb"
	}
	if !deviceNameRe.MatchString(name) {
		return fmt.Sprintf("device name %q is refused by heketi: expected an absolute path of letters, digits and _ . : / - (like /dev/sdb or /dev/disk/by-id/wwn-0x5000c500a1b2c3d4)", name)
	}
	return ""
}

// checkTagName applies heketi's tag name rule.
func checkTagName(k string) string {
	switch {
	case k == "":
		return "a tag name is empty; heketi refuses empty tag names"
	case utf8.RuneCountInString(k) > maxTagNameLen:
		return fmt.Sprintf("tag name %q is %d characters long; heketi accepts at most %d", k, utf8.RuneCountInString(k), maxTagNameLen)
	case !tagNameRe.MatchString(k):
		return fmt.Sprintf("tag name %q is refused by heketi: use only letters, digits, _ . -", k)
	}
	return ""
}

// checkTagValue applies heketi's tag value rule.
func checkTagValue(k, v string) string {
	if n := utf8.RuneCountInString(v); n > maxTagValueLen {
		return fmt.Sprintf("the value of tag %q is %d characters long; heketi accepts at most %d", k, n, maxTagValueLen)
	}
	return ""
}
