package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NewGlusterkubeImage returns the image the examples' DaemonSets run
// (what the Dockerfile makes), built here without docker or a registry:
// the GlusterFS client image (NewGlusterfsClientImage) with Debian's
// util-linux mount and umount (k8s.io/mount-utils runs them, and they call
// /sbin/mount.glusterfs; the Dockerfile's Debian base has them too) and
// /glusterkube, the glusterkube command built from this checkout with `go
// build`, as its entrypoint. Give it the reference the manifests name and
// import it into a real node (RealNode.ImportImage), and the examples'
// DaemonSets run on the node as they are.
//
// The build uses the go command and settings of the test run (cgo as it
// is, so the packages the test binary compiled are reused from the build
// cache and only the link is new); the program's shared libraries come
// along as for any host program.
func NewGlusterkubeImage(ctx context.Context, ref string) (*Image, error) {
	im, err := NewGlusterfsClientImage(ref)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{"/bin/mount", "/bin/umount"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s missing: install Debian's mount", p)
		}
		if err := im.AddHostPaths(p); err != nil {
			return nil, err
		}
	}
	bin, err := buildGlusterkube(ctx)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(bin))
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	im.AddFile("/glusterkube", data, 0o755)
	if isDynamicELF(bin) {
		libs, err := sharedLibs(bin)
		if err != nil {
			return nil, err
		}
		if err := im.AddHostPaths(libs...); err != nil {
			return nil, err
		}
	}
	im.Entrypoint = []string{"/glusterkube"}
	im.Cmd = nil
	return im, nil
}

// buildGlusterkube builds ./cmd/glusterkube into a new temp folder and
// returns the binary's path.
func buildGlusterkube(ctx context.Context) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the glusterkube image is built with the go command: %w", err)
	}
	dir, err := os.MkdirTemp("", "glusterkube-build-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "glusterkube")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-buildvcs=false", "-o", out, "./cmd/glusterkube")
	cmd.Dir = RepoRoot()
	cmd.WaitDelay = time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/glusterkube: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
