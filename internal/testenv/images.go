package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// No registry is reachable here, so the images the real node runs are built
// from files of this machine and imported into its containerd: an Image
// collects a root file system (files, folders, symlinks, and host programs
// with the shared libraries they load) and writes it as a one-layer
// docker-archive tarball with go-containerregistry.

// Images the real node has from the start.
const (
	// PauseImage holds each pod's namespaces: hack/pause, one static file.
	PauseImage = "localhost/glusterkube/pause:testenv"
	// BusyboxImage is Debian's busybox-static with a link per applet in
	// /bin, /sbin, /usr/bin and /usr/sbin.
	BusyboxImage = "localhost/glusterkube/busybox:testenv"
)

// imageTime is the time of every file in a built image, so that the same
// files give the same layer digest.
var imageTime = time.Unix(1700000000, 0).UTC()

// Image is a container image being built from files.
type Image struct {
	Ref        string
	Entrypoint []string
	Cmd        []string

	entries map[string]imageEntry // by clean path without the leading "/"
	elfSeen map[string]bool
}

type imageEntry struct {
	typ  byte // tar.TypeReg, TypeDir or TypeSymlink
	mode int64
	data []byte
	src  string // host file to read, for regular files without data
	link string
}

// NewImage starts an image with the given reference (e.g.
// "localhost/glusterkube/node-plugin:test").
func NewImage(ref string) *Image {
	return &Image{Ref: ref, entries: map[string]imageEntry{}, elfSeen: map[string]bool{}}
}

func imagePath(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// AddFile adds a regular file with the given content.
func (im *Image) AddFile(p string, data []byte, mode os.FileMode) {
	im.entries[imagePath(p)] = imageEntry{typ: tar.TypeReg, mode: int64(mode.Perm()), data: data}
}

// AddDir adds a folder (parents of other entries are added as 0755 anyway).
// A symlink already at p stays: the image keeps the host's merged /usr
// (/lib -> usr/lib) whatever order paths are added in.
func (im *Image) AddDir(p string, mode os.FileMode) {
	if e, ok := im.entries[imagePath(p)]; ok && e.typ == tar.TypeSymlink {
		return
	}
	im.entries[imagePath(p)] = imageEntry{typ: tar.TypeDir, mode: tarMode(mode)}
}

// AddSymlink adds a symbolic link. Entries added under p (as a folder) are
// written under the link's target.
func (im *Image) AddSymlink(p, target string) {
	im.entries[imagePath(p)] = imageEntry{typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// AddHostFile adds the host's file src (following symlinks) at p.
func (im *Image) AddHostFile(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("image %s: %s is not a regular file", im.Ref, src)
	}
	im.entries[imagePath(p)] = imageEntry{typ: tar.TypeReg, mode: tarMode(fi.Mode()), src: src}
	return nil
}

// AddHostPaths copies host files and folder trees into the image at the same
// paths. Symlinks on the way (Debian's /lib -> usr/lib) are kept as
// symlinks, and each ELF program or library brings the shared libraries it
// loads (as ldd lists them) and the dynamic loader. Libraries a program
// loads with dlopen (GlusterFS's translators) are not found this way: add
// their folders too.
func (im *Image) AddHostPaths(paths ...string) error {
	for _, p := range paths {
		if err := im.addHostPath(p, 0); err != nil {
			return fmt.Errorf("image %s: add %s: %w", im.Ref, p, err)
		}
	}
	return nil
}

func (im *Image) addHostPath(p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("too many symlinks resolving %s", p)
	}
	p = path.Clean("/" + p)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			im.AddSymlink(next, target)
			resolved := target
			if !path.IsAbs(target) {
				resolved = path.Join(cur, target)
			}
			return im.addHostPath(path.Join(append([]string{resolved}, parts[i+1:]...)...), depth+1)
		}
		if last {
			if fi.IsDir() {
				return im.addHostTree(next)
			}
			return im.addHostFileWithLibs(next, fi)
		}
		if _, ok := im.entries[imagePath(next)]; !ok {
			im.AddDir(next, fi.Mode())
		}
		cur = next
	}
	return nil
}

func (im *Image) addHostTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			im.AddSymlink(p, target)
		case fi.IsDir():
			im.AddDir(p, fi.Mode())
		case fi.Mode().IsRegular():
			return im.addHostFileWithLibs(p, fi)
		}
		return nil
	})
}

func (im *Image) addHostFileWithLibs(p string, fi fs.FileInfo) error {
	im.entries[imagePath(p)] = imageEntry{typ: tar.TypeReg, mode: tarMode(fi.Mode()), src: p}
	if im.elfSeen[p] || !isDynamicELF(p) {
		return nil
	}
	im.elfSeen[p] = true
	libs, err := sharedLibs(p)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := im.addHostPath(lib, 0); err != nil {
			return fmt.Errorf("library %s of %s: %w", lib, p, err)
		}
	}
	return nil
}

// isDynamicELF reports whether p is an ELF file that names an interpreter
// or needs shared libraries.
func isDynamicELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return len(libs) > 0
}

// sharedLibs lists the absolute paths ldd prints for p.
func sharedLibs(p string) ([]string, error) {
	out, err := exec.Command("ldd", p).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", p, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
				break
			}
		}
	}
	return libs, nil
}

func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// resolveParents rewrites p so that no folder on its way is a symlink of
// the image: "bin/sh" becomes "usr/bin/sh" when "bin" links to "usr/bin".
// A tar with entries under a symlink would be unpacked through it (or
// refused), so the layer holds only resolved paths.
func (im *Image) resolveParents(p string) string {
	for range 40 {
		parts := strings.Split(p, "/")
		changed := false
		for i := 0; i < len(parts)-1; i++ {
			pre := strings.Join(parts[:i+1], "/")
			e, ok := im.entries[pre]
			if !ok || e.typ != tar.TypeSymlink {
				continue
			}
			base := e.link
			if !path.IsAbs(base) {
				base = path.Join("/", path.Dir(pre), base)
			}
			p = imagePath(path.Join(append([]string{base}, parts[i+1:]...)...))
			changed = true
			break
		}
		if !changed {
			return p
		}
	}
	return p
}

// layer writes the image's files as an uncompressed tar, parents first.
func (im *Image) layer() ([]byte, error) {
	all := map[string]imageEntry{}
	for p, e := range im.entries {
		rp := im.resolveParents(p)
		if old, ok := all[rp]; ok && old.typ != tar.TypeSymlink && e.typ == tar.TypeSymlink {
			continue // a file or folder wins over a link to it
		}
		all[rp] = e
	}
	for p := range all {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = imageEntry{typ: tar.TypeDir, mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		if p != "" && p != "." {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := all[p]
		h := &tar.Header{Name: p, Typeflag: e.typ, Mode: e.mode, ModTime: imageTime, Format: tar.FormatPAX}
		data := e.data
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeSymlink:
			h.Linkname = e.link
		case tar.TypeReg:
			if e.src != "" {
				b, err := os.ReadFile(e.src)
				if err != nil {
					return nil, err
				}
				data = b
			}
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if len(data) > 0 {
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteTarball writes the image as a docker-archive tarball (what `docker
// save` writes and `ctr images import` reads).
func (im *Image) WriteTarball(w io.Writer) error {
	ref, err := name.NewTag(im.Ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", im.Ref, err)
	}
	data, err := im.layer()
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Ref, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: imageTime}
	cf.Config.Entrypoint, cf.Config.Cmd = im.Entrypoint, im.Cmd
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.Write(ref, img, w)
}

// pauseImage is the pod sandbox image: the static pause program alone.
func pauseImage(ctx context.Context) (*Image, error) {
	bin, err := Binary(ctx, "pause")
	if err != nil {
		return nil, err
	}
	im := NewImage(PauseImage)
	if err := im.AddHostFile("/pause", bin); err != nil {
		return nil, err
	}
	im.Entrypoint = []string{"/pause"}
	return im, nil
}

// busyboxPath is Debian's busybox-static.
const busyboxPath = "/bin/busybox"

// NewBusyboxImage returns an image of Debian's static busybox under ref,
// with a symlink per applet, /tmp, and /etc/passwd and /etc/group naming
// root and nobody. Add files to it to make a test's own image.
func NewBusyboxImage(ref string) (*Image, error) {
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w (install Debian's busybox-static)", busyboxPath, err)
	}
	if isDynamicELF(busyboxPath) {
		return nil, fmt.Errorf("%s is not static: install Debian's busybox-static", busyboxPath)
	}
	im := NewImage(ref)
	if err := im.AddHostFile(busyboxPath, busyboxPath); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(out)) {
		if p := "/" + applet; p != busyboxPath {
			im.AddSymlink(p, busyboxPath)
		}
	}
	im.AddDir("/tmp", 0o777|os.ModeSticky)
	im.AddDir("/root", 0o700)
	im.AddFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	im.AddFile("/etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	im.Cmd = []string{"/bin/sh"}
	return im, nil
}

// NewGlusterfsClientImage returns the busybox image (for mount.glusterfs,
// a shell script, and the tools it calls) with this machine's GlusterFS
// FUSE client: /sbin/mount.glusterfs, /usr/sbin/glusterfs with the
// libraries it links, and the translator folder it loads them from at run
// time (Debian's glusterfs-client). A node plugin image is this plus the
// plugin's binary.
func NewGlusterfsClientImage(ref string) (*Image, error) {
	im, err := NewBusyboxImage(ref)
	if err != nil {
		return nil, err
	}
	xlators, _ := filepath.Glob("/usr/lib/*/glusterfs/[0-9]*")
	if len(xlators) != 1 {
		return nil, fmt.Errorf("GlusterFS translator folder: found %q under /usr/lib/*/glusterfs, want one (install Debian's glusterfs-client)", xlators)
	}
	if err := im.AddHostPaths("/sbin/mount.glusterfs", "/usr/sbin/glusterfs", xlators[0]); err != nil {
		return nil, err
	}
	// mount.glusterfs checks a mount point's attributes with getfattr
	// when it has it (Debian's attr).
	if _, err := os.Stat("/usr/bin/getfattr"); err == nil {
		if err := im.AddHostPaths("/usr/bin/getfattr"); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"/var/log/glusterfs", "/var/lib/glusterd", "/run/gluster"} {
		im.AddDir(d, 0o755)
	}
	return im, nil
}
