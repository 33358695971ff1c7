package volume

import (
	"fmt"
	"net/url"
	"strings"
)

// The CSI volume id (a CSI PV's spec.csi.volumeHandle) names a heketi
// volume and the heketi server that holds it:
//
//	<heketi volume id>                  on the default heketi server
//	<heketi volume id>@<heketi URL>     on another server (a class's resturl)
//
// The heketi volume id is heketi's own: 32 lowercase hex digits. The URL is
// http(s)://host[:port][/path] without user, query or fragment and without
// a trailing slash, at most MaxIDLen-33 bytes, so the whole id stays within
// the 128 bytes CSI allows. "The default server" is the server the
// deployment configures as default (the same one for the provisioner and
// the CSI controller); a volume on it carries no URL, so the ids of most
// volumes are just heketi's ids and the node plugin, which reads only the
// volume context, never needs to parse one.
//
// Examples:
//
//	0b2e5c4e1b9d4b7f8a6c3d2e1f0a9b8c
//	0b2e5c4e1b9d4b7f8a6c3d2e1f0a9b8c@http://heketi.other:8080
const (
	// MaxIDLen is CSI's limit for a volume id.
	MaxIDLen    = 128
	heketiIDLen = 32
	idSeparator = "@"
)

// ID is a parsed CSI volume id.
type ID struct {
	// Heketi is heketi's volume id.
	Heketi string
	// URL is the heketi server; empty for the default server.
	URL string
}

// String formats the id as the CSI volume id.
func (id ID) String() string {
	if id.URL == "" {
		return id.Heketi
	}
	return id.Heketi + idSeparator + id.URL
}

// NewID returns the id of heketi volume heketiID on the server at url,
// leaving the URL out when it is the default server's. It fails when the
// result would not be a valid id (a malformed heketi id, a URL too long).
func NewID(heketiID, url, defaultURL string) (ID, error) {
	id := ID{Heketi: heketiID}
	if u := strings.TrimRight(url, "/"); u != strings.TrimRight(defaultURL, "/") {
		id.URL = u
	}
	if _, err := ParseID(id.String()); err != nil {
		return ID{}, err
	}
	return id, nil
}

// ParseID parses a CSI volume id. Its errors say what is wrong; they are
// meant for callers who sent the id (gRPC InvalidArgument / NotFound).
func ParseID(s string) (ID, error) {
	if len(s) > MaxIDLen {
		return ID{}, fmt.Errorf("volume id %.40q... is %d bytes long; glusterkube's ids are at most %d", s, len(s), MaxIDLen)
	}
	hid, rest, withURL := strings.Cut(s, idSeparator)
	if !heketiIDRe.MatchString(hid) {
		return ID{}, fmt.Errorf("volume id %q is not a glusterkube volume id: it must start with a heketi volume id (32 hex digits)", s)
	}
	if !withURL {
		return ID{Heketi: hid}, nil
	}
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(rest, "/") || strings.Contains(rest, idSeparator) {
		return ID{}, fmt.Errorf("volume id %q names heketi server %q, which is not an http(s) URL without user, query or trailing slash", s, rest)
	}
	return ID{Heketi: hid, URL: rest}, nil
}

// IsHeketiID reports whether s has the form of a heketi id (32 lower-case
// hex digits).
func IsHeketiID(s string) bool { return heketiIDRe.MatchString(s) }
