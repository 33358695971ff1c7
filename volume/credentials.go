package volume

import (
	"context"
	"fmt"
	"strings"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Credentials say how to reach heketi for one volume. Key is never logged
// nor recorded; SecretNamespace/SecretName are, so that a later delete or
// expansion can find the key again.
type Credentials struct {
	URL, User, Key              string
	SecretNamespace, SecretName string
}

// SecretRef is "<namespace>/<name>" of the Secret holding the key, or "".
func (c Credentials) SecretRef() string {
	if c.SecretName == "" {
		return ""
	}
	return c.SecretNamespace + "/" + c.SecretName
}

// SecretReader returns the heketi key stored in a Secret. The provisioner
// reads the Kubernetes Secret; the CSI controller answers from the secrets
// of the call.
type SecretReader func(ctx context.Context, namespace, name string) (string, error)

// DefaultUser is the heketi user when a class names a key but no user.
const DefaultUser = "admin"

// ClassCredentials resolves where and as whom a class's volumes are made:
// the class's resturl/restuser/Secret (or deprecated restuserkey), else
// the service's default heketi server and credentials. Problems are
// *ParamError naming the parameter.
func (s *Service) ClassCredentials(ctx context.Context, class string, cfg *ClassConfig, read SecretReader) (Credentials, error) {
	def := s.cfg.Default
	cr := Credentials{URL: cfg.URL}
	if cr.URL == "" {
		cr.URL = def.URL
	}
	if cr.URL == "" {
		return cr, NoURL(class)
	}
	switch {
	case cfg.AuthEnabled != nil && !*cfg.AuthEnabled:
		// No credentials at all.
	case cfg.SecretName != "":
		key, err := read(ctx, cfg.SecretNamespace, cfg.SecretName)
		if err != nil {
			return cr, err
		}
		cr.User, cr.Key = orAdmin(cfg.User), key
		cr.SecretNamespace, cr.SecretName = cfg.SecretNamespace, cfg.SecretName
	case cfg.UserKey != "":
		cr.User, cr.Key = orAdmin(cfg.User), cfg.UserKey
	case sameURL(cr.URL, def.URL) && (cfg.User == "" || cfg.User == def.User):
		cr.User, cr.Key = def.User, def.Key
	case cfg.User != "":
		return cr, &ParamError{Class: class, Param: ParamRESTUser, Value: cfg.User, Problem: "a heketi user without a key",
			Want: fmt.Sprintf("also set %s and %s naming a Secret of type %s with key %q", ParamSecretNamespace, ParamSecretName, SecretType, SecretKey)}
	}
	if cfg.AuthEnabled != nil && *cfg.AuthEnabled && cr.Key == "" {
		return cr, &ParamError{Class: class, Param: ParamRESTAuthEnabled, Value: "true", Problem: "authentication is on but no key is known",
			Want: fmt.Sprintf("set %s and %s, or set %s", ParamSecretNamespace, ParamSecretName, heketi.SettingCredentials)}
	}
	return cr, nil
}

// DefaultCredentials returns the default server's credentials when url is
// the default server ("" means the default server); ok is false when it is
// another server (or no default is configured).
func (s *Service) DefaultCredentials(url string) (cr Credentials, ok bool) {
	def := s.cfg.Default
	if def.URL == "" || (url != "" && !sameURL(url, def.URL)) {
		return Credentials{URL: url}, false
	}
	return Credentials{URL: def.URL, User: def.User, Key: def.Key}, true
}

// NoURL is the error for a class that names no heketi server when no
// default server is set (a *ParamError; class may be ""). The setting is
// named as internal/heketi names it, so the command line can add its
// flags.
func NoURL(class string) error {
	return &ParamError{Class: class, Param: ParamRESTURL, Problem: fmt.Sprintf("no heketi URL: the class has no resturl and %s is not set", heketi.SettingURL), Want: "resturl: http://heketi.example:8080"}
}

// DefaultURL is the default heketi server's URL ("" when none).
func (s *Service) DefaultURL() string { return s.cfg.Default.URL }

func orAdmin(user string) string {
	if user == "" {
		return DefaultUser
	}
	return user
}

func sameURL(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}
