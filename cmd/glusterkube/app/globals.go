package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Globals holds the shared flags and streams of one command invocation.
type Globals struct {
	Streams
	Getenv func(string) string

	Verbosity int

	Kubeconfig string

	HeketiURL      string
	HeketiUser     string
	HeketiKey      string
	HeketiKeyFile  string
	HeketiTimeout  time.Duration
	HeketiInflight int
}

// AddKubeFlags adds --kubeconfig.
func (g *Globals) AddKubeFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.Kubeconfig, "kubeconfig", "", "path to a kubeconfig (default $KUBECONFIG, then in-cluster config, then ~/.kube/config)")
}

// AddOptionalKubeFlags adds --kubeconfig for commands that use a cluster
// only when one is given (ClusterConfigured): ~/.kube/config alone does
// not count.
func (g *Globals) AddOptionalKubeFlags(fs *pflag.FlagSet, what string) {
	fs.StringVar(&g.Kubeconfig, "kubeconfig", "", "path to a kubeconfig, for "+what+" (default $KUBECONFIG, else in-cluster config; ~/.kube/config is not read)")
}

// AddHeketiFlags adds the heketi connection flags. Defaults come from the
// environment variables heketi-cli uses.
func (g *Globals) AddHeketiFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.HeketiURL, "heketi-url", "", "heketi server URL (default $HEKETI_CLI_SERVER)")
	fs.StringVar(&g.HeketiUser, "heketi-user", "", "heketi user (default $HEKETI_CLI_USER, else admin when a key is given)")
	fs.StringVar(&g.HeketiKey, "heketi-key", "", "heketi secret key (default $HEKETI_CLI_KEY); prefer --heketi-key-file, which keeps it out of ps")
	fs.StringVar(&g.HeketiKeyFile, "heketi-key-file", "", "file holding the heketi secret key")
	fs.DurationVar(&g.HeketiTimeout, "heketi-timeout", heketi.DefaultTimeout, "deadline for each heketi call, including waiting for its operation")
}

// addHeketiInflight adds --heketi-inflight, for the long-running commands
// that share one client across many workers.
func (g *Globals) addHeketiInflight(fs *pflag.FlagSet) {
	fs.IntVar(&g.HeketiInflight, "heketi-inflight", heketi.DefaultMaxInflight, "heketi calls in flight at once (heketi's max_inflight_operations)")
}

func (g *Globals) validateHeketiInflight() error {
	if g.HeketiInflight < 1 {
		return Usagef("--heketi-inflight must be at least 1")
	}
	return nil
}

// OptionalHeketiConfig is HeketiConfig for commands that can run without
// a default heketi server (every StorageClass naming its own, resturl):
// with no --heketi-url and no HEKETI_CLI_SERVER it returns a config with
// no URL and the timeout and in-flight limit.
func (g *Globals) OptionalHeketiConfig() (heketi.Config, error) {
	if g.HeketiURL == "" && g.Getenv("HEKETI_CLI_SERVER") == "" {
		return heketi.Config{Timeout: g.HeketiTimeout, MaxInflight: g.HeketiInflight}, nil
	}
	return g.HeketiConfig()
}

// HeketiConfig resolves the heketi flags and environment into a Config.
func (g *Globals) HeketiConfig() (heketi.Config, error) {
	cfg := heketi.Config{URL: g.HeketiURL, User: g.HeketiUser, Key: g.HeketiKey, Timeout: g.HeketiTimeout, MaxInflight: g.HeketiInflight}
	if cfg.URL == "" {
		cfg.URL = g.Getenv("HEKETI_CLI_SERVER")
	}
	if cfg.URL == "" {
		return cfg, Usagef("no heketi server: pass --heketi-url or set HEKETI_CLI_SERVER")
	}
	if cfg.User == "" {
		cfg.User = g.Getenv("HEKETI_CLI_USER")
	}
	if g.HeketiKeyFile != "" {
		if cfg.Key != "" {
			return cfg, Usagef("--heketi-key and --heketi-key-file are mutually exclusive")
		}
		b, err := os.ReadFile(g.HeketiKeyFile)
		if err != nil {
			return cfg, fmt.Errorf("read --heketi-key-file: %w", err)
		}
		cfg.Key = strings.TrimSpace(string(b))
	}
	if cfg.Key == "" {
		cfg.Key = g.Getenv("HEKETI_CLI_KEY")
	}
	if cfg.User == "" && cfg.Key != "" {
		cfg.User = "admin"
	}
	return cfg, nil
}

// HeketiClient builds a heketi client from the flags.
func (g *Globals) HeketiClient() (*heketi.Client, error) {
	cfg, err := g.HeketiConfig()
	if err != nil {
		return nil, err
	}
	return heketi.New(cfg)
}

// RESTConfig resolves --kubeconfig, $KUBECONFIG, in-cluster config and
// ~/.kube/config, in that order.
func (g *Globals) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.Kubeconfig != "" {
		rules.ExplicitPath = g.Kubeconfig
	} else if g.Getenv("KUBECONFIG") == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			cfg.UserAgent = "glusterkube/" + Version
			return cfg, nil
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "glusterkube/" + Version
	return cfg, nil
}

// ClusterConfigured reports whether a cluster is given: --kubeconfig,
// $KUBECONFIG, or the in-cluster config of a pod. Commands that can do
// more with cluster access (the zone checks of topology validate and plan)
// use it only then.
func (g *Globals) ClusterConfigured() bool {
	return g.Kubeconfig != "" || g.Getenv("KUBECONFIG") != "" || g.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// listNodes lists the cluster's Nodes.
func (g *Globals) listNodes(ctx context.Context) ([]corev1.Node, error) {
	kube, _, err := g.KubeClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the Nodes: %w", err)
	}
	return list.Items, nil
}

// KubeClient builds a clientset from RESTConfig.
func (g *Globals) KubeClient() (kubernetes.Interface, *rest.Config, error) {
	cfg, err := g.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("build kubernetes client: %w", err)
	}
	return cs, cfg, nil
}
