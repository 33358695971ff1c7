package volume

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/apimachinery/pkg/util/validation"
)

// StorageClass parameter names, as the in-tree kubernetes.io/glusterfs
// provisioner spelled them. Keys are matched case-insensitively, as in-tree.
const (
	ParamRESTURL            = "resturl"
	ParamRESTAuthEnabled    = "restauthenabled"
	ParamRESTUser           = "restuser"
	ParamRESTUserKey        = "restuserkey"
	ParamSecretNamespace    = "secretNamespace"
	ParamSecretName         = "secretName"
	ParamClusterID          = "clusterid"
	ParamGIDMin             = "gidMin"
	ParamGIDMax             = "gidMax"
	ParamVolumeType         = "volumetype"
	ParamVolumeOptions      = "volumeoptions"
	ParamVolumeNamePrefix   = "volumenameprefix"
	ParamSnapFactor         = "snapfactor"
	ParamCustomEPNamePrefix = "customepnameprefix"
	// ParamVolumeSource is glusterkube's own: the kind of PV the built-in
	// provisioner makes (VolumeSourceCSI or VolumeSourceGlusterfs).
	ParamVolumeSource = "volumesource"
	// ParamPlacement is glusterkube's own: how a volume's bricks are
	// placed over the Kubernetes zones of the storage nodes
	// (PlacementSpread or PlacementLocal; see placement.go).
	ParamPlacement = "placement"
)

// Values of ParamPlacement.
const (
	// PlacementSpread puts the bricks of every replica (or disperse) set in
	// different zones, with heketi's strict zone checking: the volume
	// survives the loss of a zone and is used from every zone.
	PlacementSpread = "spread"
	// PlacementLocal puts all bricks in one zone — the zone of the node
	// the pod was scheduled to, or the one zone allowedTopologies allows —
	// and pins the volume (PV node affinity) to that zone, so pods stay
	// near their data.
	PlacementLocal = "local"
)

// Values of ParamVolumeSource.
const (
	// VolumeSourceCSI: PVs with a csi source for the glusterkube CSI
	// driver (the default; kubelets from 1.26 on mount only these).
	VolumeSourceCSI = "csi"
	// VolumeSourceGlusterfs: PVs with the in-tree glusterfs source and a
	// Service and Endpoints per claim, for clusters older than 1.26.
	VolumeSourceGlusterfs = "glusterfs"
)

// csiParamPrefix marks the keys the CSI external-provisioner adds to a
// class's parameters (secret references, claim metadata); they are not
// glusterkube's and are skipped.
const csiParamPrefix = "csi.storage.k8s.io/"

// Defaults and limits of the parameters.
const (
	DefaultGIDMin     = 2000
	DefaultGIDMax     = math.MaxInt32
	DefaultReplica    = 3
	DefaultSnapFactor = 1.0
	// maxPrefixLen keeps derived names within gluster's and DNS limits.
	maxPrefixLen = 32
	// maxURLLen keeps a volume id that carries the URL within CSI's 128
	// bytes (see ID).
	maxURLLen = MaxIDLen - heketiIDLen - len(idSeparator)
)

// SecretType is the type the Secret named by secretName must have.
const SecretType = "kubernetes.io/glusterfs"

// SecretKey is the key in that Secret holding heketi's key.
const SecretKey = "key"

var (
	knownParams = []string{
		ParamRESTURL, ParamRESTAuthEnabled, ParamRESTUser, ParamRESTUserKey,
		ParamSecretNamespace, ParamSecretName, ParamClusterID, ParamGIDMin,
		ParamGIDMax, ParamVolumeType, ParamVolumeOptions, ParamVolumeNamePrefix,
		ParamSnapFactor, ParamCustomEPNamePrefix, ParamVolumeSource, ParamPlacement,
	}
	heketiIDRe     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	namePrefixRe   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]*$`)
	volumeOptionRe = regexp.MustCompile(`^\S+\s+\S.*$`)
)

// ClassConfig is a parsed StorageClass.
type ClassConfig struct {
	// URL of heketi; empty means the default heketi server.
	URL string
	// AuthEnabled is restauthenabled, nil when not given.
	AuthEnabled *bool
	// User is restuser; empty means the default server's user.
	User string
	// UserKey is the deprecated inline restuserkey. It is never logged nor
	// written to a PV.
	UserKey string
	// SecretNamespace/SecretName name the Secret holding the key.
	SecretNamespace, SecretName string
	// Clusters restricts placement to these heketi clusters.
	Clusters []string
	// GIDMin and GIDMax bound the GIDs given to volumes of the class.
	GIDMin, GIDMax int
	// Durability is the parsed volumetype.
	Durability api.VolumeDurabilityInfo
	// VolumeOptions are gluster volume options ("key value").
	VolumeOptions []string
	// NamePrefix is volumenameprefix.
	NamePrefix string
	// SnapFactor is the thin pool snapshot factor.
	SnapFactor float32
	// EPNamePrefix is customepnameprefix.
	EPNamePrefix string
	// VolumeSource is volumesource: VolumeSourceCSI (default) or
	// VolumeSourceGlusterfs.
	VolumeSource string
	// Placement is placement: PlacementSpread, PlacementLocal, or "" (the
	// default: spread when the storage nodes span enough zones; see
	// Decide).
	Placement string
	// ownPlacement: volumeoptions set heketi's own placement options
	// (zone checking, a device tag rule); placement is then left to them.
	ownPlacement bool
	// Deprecated lists parameters that work but should be replaced, with
	// what to use instead.
	Deprecated []string
}

// ParamError is an invalid StorageClass parameter. Its message names the
// class, the parameter and the valid form.
type ParamError struct {
	Class, Param, Value, Problem, Want string
}

func (e *ParamError) Error() string {
	class := "StorageClass"
	if e.Class != "" {
		// CSI calls do not name the class: the message then reads
		// "StorageClass parameter ...", otherwise the same.
		class = fmt.Sprintf("StorageClass %q", e.Class)
	}
	if e.Param == "" {
		return fmt.Sprintf("%s: %s", class, e.Problem)
	}
	msg := fmt.Sprintf("%s parameter %s=%q: %s", class, e.Param, e.Value, e.Problem)
	if e.Want != "" {
		msg += "; valid form: " + e.Want
	}
	return msg
}

// ParseClass parses a StorageClass's parameters strictly: an unknown key or
// a malformed value is an error naming the parameter and its valid form.
// Keys under csi.storage.k8s.io/ (added by the CSI external-provisioner)
// are skipped.
func ParseClass(class string, params map[string]string) (*ClassConfig, error) {
	cfg := &ClassConfig{
		GIDMin:       DefaultGIDMin,
		GIDMax:       DefaultGIDMax,
		Durability:   api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: DefaultReplica}},
		SnapFactor:   DefaultSnapFactor,
		VolumeSource: VolumeSourceCSI,
	}
	bad := func(param, value, problem, want string) error {
		return &ParamError{Class: class, Param: param, Value: value, Problem: problem, Want: want}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first bad key deterministically
	seen := map[string]string{}
	for _, key := range keys {
		v := params[key]
		if strings.HasPrefix(strings.ToLower(key), csiParamPrefix) {
			continue
		}
		name, ok := canonicalParam(key)
		if !ok {
			return nil, &ParamError{Class: class, Param: key, Value: v, Problem: "unknown parameter",
				Want: "one of " + strings.Join(knownParams, ", ")}
		}
		if prev, dup := seen[name]; dup {
			return nil, &ParamError{Class: class, Param: key, Value: v, Problem: fmt.Sprintf("given twice (also as %s)", prev)}
		}
		seen[name] = key
		switch name {
		case ParamRESTURL:
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return nil, bad(key, v, "not an http(s) URL", "http://heketi.example:8080")
			}
			if len(strings.TrimRight(v, "/")) > maxURLLen {
				return nil, bad(key, v, fmt.Sprintf("longer than %d bytes, the most a CSI volume id can carry", maxURLLen), "a shorter URL for the same server, e.g. http://heketi.glusterfs:8080")
			}
			cfg.URL = strings.TrimRight(v, "/")
		case ParamRESTAuthEnabled:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad(key, v, "not a boolean", `"true" or "false"`)
			}
			cfg.AuthEnabled = &b
		case ParamRESTUser:
			if strings.TrimSpace(v) == "" {
				return nil, bad(key, v, "empty user", "a heketi user, normally admin")
			}
			cfg.User = v
		case ParamRESTUserKey:
			if v == "" {
				return nil, &ParamError{Class: class, Param: key, Problem: "empty key", Want: "a Secret named by secretNamespace/secretName"}
			}
			cfg.UserKey = v
			cfg.Deprecated = append(cfg.Deprecated, fmt.Sprintf("parameter %s puts the heketi key in the StorageClass; store it in a Secret of type %s (key %q) and set %s and %s instead", key, SecretType, SecretKey, ParamSecretNamespace, ParamSecretName))
		case ParamSecretNamespace:
			if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
				return nil, bad(key, v, "not a namespace name: "+strings.Join(errs, "; "), "a namespace name, e.g. glusterfs")
			}
			cfg.SecretNamespace = v
		case ParamSecretName:
			if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
				return nil, bad(key, v, "not a Secret name: "+strings.Join(errs, "; "), "a Secret name, e.g. heketi-secret")
			}
			cfg.SecretName = v
		case ParamClusterID:
			for _, id := range strings.Split(v, ",") {
				id = strings.TrimSpace(id)
				if !heketiIDRe.MatchString(id) {
					return nil, bad(key, v, fmt.Sprintf("%q is not a heketi cluster id", id), "comma-separated heketi cluster ids (32 hex digits each)")
				}
				cfg.Clusters = append(cfg.Clusters, id)
			}
		case ParamGIDMin, ParamGIDMax:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < DefaultGIDMin || n > DefaultGIDMax {
				return nil, bad(key, v, "not a GID in the allowed range", fmt.Sprintf("an integer from %d to %d", DefaultGIDMin, DefaultGIDMax))
			}
			if name == ParamGIDMin {
				cfg.GIDMin = int(n)
			} else {
				cfg.GIDMax = int(n)
			}
		case ParamVolumeType:
			d, err := parseVolumeType(v)
			if err != nil {
				return nil, bad(key, v, err.Error(), `"replicate:N", "disperse:DATA:REDUNDANCY" or "none"`)
			}
			cfg.Durability = d
		case ParamVolumeOptions:
			for _, o := range strings.Split(v, ",") {
				o = strings.TrimSpace(o)
				if !volumeOptionRe.MatchString(o) {
					return nil, bad(key, v, fmt.Sprintf("option %q is not \"<option> <value>\"", o), `comma-separated "<option> <value>" pairs, e.g. "client.ssl on, server.ssl on"`)
				}
				if name, _, _ := strings.Cut(o, " "); name == OptionZoneChecking || name == OptionDeviceTagMatch {
					cfg.ownPlacement = true
				}
				cfg.VolumeOptions = append(cfg.VolumeOptions, o)
			}
		case ParamVolumeNamePrefix:
			if !namePrefixRe.MatchString(v) || len(v) > maxPrefixLen {
				return nil, bad(key, v, "not a valid volume name prefix (no '_')", fmt.Sprintf("letters, digits and '-', at most %d characters", maxPrefixLen))
			}
			cfg.NamePrefix = v
		case ParamSnapFactor:
			f, err := strconv.ParseFloat(v, 32)
			if err != nil || f < 1 || f > 100 {
				return nil, bad(key, v, "not a snapshot factor", "a number from 1 to 100")
			}
			cfg.SnapFactor = float32(f)
		case ParamCustomEPNamePrefix:
			if errs := validation.IsDNS1035Label(v); len(errs) > 0 || len(v) > maxPrefixLen {
				return nil, bad(key, v, "not a valid Endpoints/Service name prefix", fmt.Sprintf("a DNS-1035 label (lowercase letters, digits, '-'; starts with a letter), at most %d characters", maxPrefixLen))
			}
			cfg.EPNamePrefix = v
		case ParamVolumeSource:
			switch strings.ToLower(v) {
			case VolumeSourceCSI, VolumeSourceGlusterfs:
				cfg.VolumeSource = strings.ToLower(v)
			default:
				return nil, bad(key, v, "not a volume source", fmt.Sprintf("%q (CSI PVs, Kubernetes 1.26 and later) or %q (in-tree glusterfs PVs, clusters older than 1.26)", VolumeSourceCSI, VolumeSourceGlusterfs))
			}
		case ParamPlacement:
			switch strings.ToLower(v) {
			case PlacementSpread, PlacementLocal:
				cfg.Placement = strings.ToLower(v)
			default:
				return nil, bad(key, v, "not a placement", fmt.Sprintf("%q (every replica set's bricks in different zones) or %q (all bricks in the pod's zone, the volume pinned to it)", PlacementSpread, PlacementLocal))
			}
		}
	}
	if (cfg.SecretName == "") != (cfg.SecretNamespace == "") {
		return nil, &ParamError{Class: class, Problem: fmt.Sprintf("%s and %s must be given together", ParamSecretNamespace, ParamSecretName)}
	}
	if cfg.SecretName != "" && cfg.UserKey != "" {
		return nil, &ParamError{Class: class, Problem: fmt.Sprintf("both %s and %s are set: drop %s and keep the Secret", ParamRESTUserKey, ParamSecretName, ParamRESTUserKey)}
	}
	if cfg.GIDMin > cfg.GIDMax {
		return nil, &ParamError{Class: class, Param: ParamGIDMin, Value: strconv.Itoa(cfg.GIDMin),
			Problem: fmt.Sprintf("greater than %s=%d", ParamGIDMax, cfg.GIDMax), Want: "gidMin <= gidMax"}
	}
	if cfg.Placement != "" && cfg.ownPlacement {
		return nil, &ParamError{Class: class, Param: ParamPlacement, Value: cfg.Placement,
			Problem: fmt.Sprintf("%s also sets heketi's placement options (%s, %s), which placement sets itself", ParamVolumeOptions, OptionZoneChecking, OptionDeviceTagMatch),
			Want:    "drop those options from volumeoptions, or drop placement"}
	}
	if cfg.AuthEnabled != nil && !*cfg.AuthEnabled && (cfg.User != "" || cfg.UserKey != "" || cfg.SecretName != "") {
		return nil, &ParamError{Class: class, Param: ParamRESTAuthEnabled, Value: "false",
			Problem: "authentication is disabled but restuser, restuserkey or secretName is set", Want: "drop restauthenabled or the credentials"}
	}
	return cfg, nil
}

// canonicalParam maps a key to its canonical name, case-insensitively.
func canonicalParam(key string) (string, bool) {
	for _, k := range knownParams {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}

func parseVolumeType(v string) (api.VolumeDurabilityInfo, error) {
	parts := strings.Split(v, ":")
	num := func(s, what string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s %q is not a positive integer", what, s)
		}
		return n, nil
	}
	switch strings.ToLower(strings.TrimSpace(parts[0])) {
	case string(api.DurabilityReplicate):
		if len(parts) != 2 {
			return api.VolumeDurabilityInfo{}, fmt.Errorf("replicate needs a replica count")
		}
		n, err := num(parts[1], "replica count")
		if err != nil {
			return api.VolumeDurabilityInfo{}, err
		}
		return api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: n}}, nil
	case string(api.DurabilityEC):
		if len(parts) != 3 {
			return api.VolumeDurabilityInfo{}, fmt.Errorf("disperse needs data and redundancy counts")
		}
		d, err := num(parts[1], "data count")
		if err != nil {
			return api.VolumeDurabilityInfo{}, err
		}
		r, err := num(parts[2], "redundancy count")
		if err != nil {
			return api.VolumeDurabilityInfo{}, err
		}
		return api.VolumeDurabilityInfo{Type: api.DurabilityEC, Disperse: api.DisperseDurability{Data: d, Redundancy: r}}, nil
	case string(api.DurabilityDistributeOnly):
		if len(parts) != 1 {
			return api.VolumeDurabilityInfo{}, fmt.Errorf("none takes no counts")
		}
		return api.VolumeDurabilityInfo{Type: api.DurabilityDistributeOnly}, nil
	}
	return api.VolumeDurabilityInfo{}, fmt.Errorf("unknown volume type %q", parts[0])
}
