package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// KubeVersion is the Kubernetes release the control plane is built at.
const KubeVersion = "v1.37.2"

// component is one nested module under hack/ and the binaries it builds.
type component struct {
	module string   // folder under hack/
	bins   []string // binary names it provides
	build  func(ctx context.Context, modDir, outDir string) error
	// recipe changes when the component's build steps change, so that
	// cached binaries of the old steps are rebuilt.
	recipe string
	// sources: the module's own .go files decide its binaries too (the
	// others only pin modules, so go.mod and go.sum say it all).
	sources bool
}

var components = []component{
	{module: "heketi", bins: []string{"heketi", "heketi-cli"}, build: buildHeketi, recipe: "4+mock-clone\n" + mockCloneSource}, // the mock executor clones (heketi_mockclone.go): its source is in the key
	{module: "kube", bins: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet"}, build: buildKube, recipe: "6"},
	{module: "kwok", bins: []string{"kwok", "kwok-stages"}, build: buildKwok, recipe: "4"},
	{module: "pause", bins: []string{"pause"}, build: buildPause, recipe: "1", sources: true},
}

// systemBinaries come from Debian packages.
var systemBinaries = map[string]string{
	"etcd":                    "etcd-server",
	"glusterd":                "glusterfs-server",
	"glusterfs":               "glusterfs-client",
	"gluster":                 "glusterfs-server",
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
}

var binMu sync.Mutex

// RepoRoot is the root of the glusterkube checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir is where built binaries are kept: $GLUSTERKUBE_CACHE, else
// $XDG_CACHE_HOME/glusterkube, else ~/.cache/glusterkube.
func CacheDir() string {
	if d := os.Getenv("GLUSTERKUBE_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "glusterkube")
}

// Binary returns the path of a test component binary, building it (once,
// cached) when it comes from a nested module under hack/. "kwok-stages" is
// the folder of kwok's stage files.
func Binary(ctx context.Context, name string) (string, error) {
	if pkg, ok := systemBinaries[name]; ok {
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%s not found: install Debian's %s (apt-get install -y %s)", name, pkg, pkg)
	}
	for _, c := range components {
		for _, b := range c.bins {
			if b == name {
				dir, err := ensureComponent(ctx, c)
				if err != nil {
					return "", err
				}
				return filepath.Join(dir, name), nil
			}
		}
	}
	return "", fmt.Errorf("unknown test binary %q", name)
}

// EnsureAll builds every component binary (for make test / make demo).
func EnsureAll(ctx context.Context) error {
	for _, c := range components {
		if _, err := ensureComponent(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func ensureComponent(ctx context.Context, c component) (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	modDir := filepath.Join(RepoRoot(), "hack", c.module)
	key, err := componentKey(modDir, c.recipe, c.sources)
	if err != nil {
		return "", err
	}
	outDir := filepath.Join(CacheDir(), "bin", c.module+"-"+key)
	if complete(outDir, c.bins) {
		return outDir, nil
	}
	if err := os.MkdirAll(filepath.Dir(outDir), 0o755); err != nil {
		return "", err
	}
	// Other test binaries (go test runs packages in parallel) may build the
	// same component: take a file lock, then look again.
	lock, err := os.OpenFile(outDir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if complete(outDir, c.bins) {
		return outDir, nil
	}
	tmp := outDir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "testenv: building %s (hack/%s) into %s, once; later runs reuse it\n", strings.Join(c.bins, ", "), c.module, outDir)
	if err := c.build(ctx, modDir, tmp); err != nil {
		return "", fmt.Errorf("build hack/%s: %w", c.module, err)
	}
	_ = os.RemoveAll(outDir)
	if err := os.Rename(tmp, outDir); err != nil {
		return "", err
	}
	return outDir, nil
}

func complete(dir string, bins []string) bool {
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// componentKey hashes what decides a component's binaries: its module files
// (and its own sources, when it has them), its build recipe's version and
// the Go version.
func componentKey(modDir, recipe string, sources bool) (string, error) {
	h := sha256.New()
	files := []string{"go.mod", "go.sum"}
	if sources {
		srcs, err := filepath.Glob(filepath.Join(modDir, "*.go"))
		if err != nil {
			return "", err
		}
		for _, f := range srcs {
			files = append(files, filepath.Base(f))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		h.Write(b)
	}
	h.Write([]byte(runtime.Version()))
	h.Write([]byte(recipe))
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func goBuild(ctx context.Context, modDir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-mod=mod", "-trimpath"}, args...)...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-buildvcs=false", "GOWORK=off"}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// moduleDir returns the folder of a module in the module cache, downloading
// it first: on an empty cache `go list -m` prints an empty Dir, and a build
// step that read files from "" would read the current folder instead.
func moduleDir(ctx context.Context, modDir, module string) (string, error) {
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	dl := exec.CommandContext(ctx, "go", "mod", "download", module)
	dl.Dir = modDir
	dl.Env = env
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod download %s: %w\n%s", module, err, out)
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-mod=mod", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = modDir
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("module %s has no folder in the module cache after download (go list -m printed %q)", module, dir)
	}
	return dir, nil
}

// godbcSource is where Debian's golang-github-lpabon-godbc-dev puts godbc,
// which the module proxy does not serve.
const godbcSource = "/usr/share/gocode/src/github.com/lpabon/godbc"

func buildHeketi(ctx context.Context, modDir, outDir string) error {
	// hack/heketi/go.mod replaces github.com/lpabon/godbc with ./godbc: a
	// copy of Debian's source with a one-line go.mod.
	dst := filepath.Join(modDir, "godbc")
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); err != nil {
		if _, err := os.Stat(godbcSource); err != nil {
			return fmt.Errorf("godbc source missing: apt-get install -y golang-github-lpabon-godbc-dev")
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		files, err := filepath.Glob(filepath.Join(godbcSource, "*.go"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module github.com/lpabon/godbc\n"), 0o644); err != nil {
			return err
		}
	}
	// heketi listens on ":port" (every interface) and has no option for
	// the address. Test servers must listen on 127.0.0.1 only, so the build
	// compiles a copy of heketi's main.go whose listener takes its host from
	// $HEKETI_BIND_ADDRESS. (The mock executor is patched too, for clones:
	// heketi_mockclone.go.)
	src, err := moduleDir(ctx, modDir, "github.com/heketi/heketi")
	if err != nil {
		return err
	}
	mainGo, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return err
	}
	patched := strings.ReplaceAll(string(mainGo), `(":"+options.Port`, `(os.Getenv("HEKETI_BIND_ADDRESS")+":"+options.Port`)
	if n := strings.Count(patched, "HEKETI_BIND_ADDRESS"); n != 2 {
		return fmt.Errorf("patching heketi main.go listener: %d replacements, want 2", n)
	}
	// The patched copy is built as package main of hack/heketi (the
	// folder is generated here and ignored by git).
	srvDir := filepath.Join(modDir, "server")
	if err := os.MkdirAll(srvDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(srvDir, "main.go"), []byte(patched), 0o644); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "glusterkube-heketi-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	modfile, err := heketiModfile(modDir, src, tmp)
	if err != nil {
		return err
	}
	if err := goBuild(ctx, modDir, nil, "-modfile", modfile, "-o", filepath.Join(outDir, "heketi"), "./server"); err != nil {
		return err
	}
	return goBuild(ctx, modDir, nil, "-o", filepath.Join(outDir, "heketi-cli"), "github.com/heketi/heketi/client/cli/go")
}

func buildKube(ctx context.Context, modDir, outDir string) error {
	minor := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")[1]
	ld := fmt.Sprintf("-s -w -X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%s -X k8s.io/component-base/version.gitTreeState=clean", KubeVersion, minor)
	return goBuild(ctx, modDir, nil, "-ldflags", ld, "-o", outDir+"/",
		"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kube-scheduler",
		// kubectl: tests apply what users apply the way they apply it.
		"k8s.io/kubernetes/cmd/kubectl",
		// kubelet: the real node's (realnode.go).
		"k8s.io/kubernetes/cmd/kubelet")
}

// buildPause builds hack/pause static: the pause image holds this one file.
func buildPause(ctx context.Context, modDir, outDir string) error {
	return goBuild(ctx, modDir, []string{"CGO_ENABLED=0"}, "-ldflags", "-s -w", "-o", filepath.Join(outDir, "pause"), ".")
}

func buildKwok(ctx context.Context, modDir, outDir string) error {
	if err := goBuild(ctx, modDir, nil, "-o", filepath.Join(outDir, "kwok"), "sigs.k8s.io/kwok/cmd/kwok"); err != nil {
		return err
	}
	// The stage files shipped in kwok's module: nodes become Ready and keep
	// heartbeating; pods run and become Ready.
	src, err := moduleDir(ctx, modDir, "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	stages := filepath.Join(outDir, "kwok-stages")
	if err := os.MkdirAll(stages, 0o755); err != nil {
		return err
	}
	for _, set := range []string{"node/fast", "node/heartbeat", "pod/fast"} {
		files, err := filepath.Glob(filepath.Join(src, "kustomize", "stage", set, "*.yaml"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			name := strings.ReplaceAll(set, "/", "-") + "-" + filepath.Base(f)
			if err := os.WriteFile(filepath.Join(stages, name), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
