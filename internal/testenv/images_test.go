package testenv

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerEntries reads an image's layer back: path -> (type, link target).
func layerEntries(t *testing.T, im *Image) map[string]tar.Header {
	t.Helper()
	data, err := im.layer()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Clean(h.Name)] = *h
	}
}

func TestImageLayer(t *testing.T) {
	tests := []struct {
		name  string
		build func(im *Image)
		want  map[string]byte   // path -> tar type that must be there
		links map[string]string // symlink -> target
		not   []string          // paths that must not be there
	}{{
		name: "parents are made",
		build: func(im *Image) {
			im.AddFile("/a/b/c", []byte("x"), 0o644)
		},
		want: map[string]byte{"a": tar.TypeDir, "a/b": tar.TypeDir, "a/b/c": tar.TypeReg},
	}, {
		name: "files under a symlinked folder land under its target",
		build: func(im *Image) {
			im.AddFile("/bin/sh", []byte("x"), 0o755)
			im.AddSymlink("/bin", "usr/bin")
		},
		want:  map[string]byte{"usr/bin/sh": tar.TypeReg, "bin": tar.TypeSymlink},
		links: map[string]string{"bin": "usr/bin"},
		not:   []string{"bin/sh"},
	}, {
		name: "a folder does not replace a symlink",
		build: func(im *Image) {
			im.AddSymlink("/lib", "usr/lib")
			im.AddDir("/lib", 0o755)
			im.AddFile("/lib/x.so", []byte("x"), 0o644)
		},
		want: map[string]byte{"lib": tar.TypeSymlink, "usr/lib/x.so": tar.TypeReg},
	}, {
		name: "absolute symlink targets resolve from the image root",
		build: func(im *Image) {
			im.AddSymlink("/sbin", "/usr/sbin")
			im.AddFile("/sbin/mount.x", []byte("#!/bin/sh\n"), 0o755)
		},
		want: map[string]byte{"usr/sbin/mount.x": tar.TypeReg},
		not:  []string{"sbin/mount.x"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im := NewImage("localhost/test:1")
			tc.build(im)
			got := layerEntries(t, im)
			for p, typ := range tc.want {
				if h, ok := got[p]; !ok || h.Typeflag != typ {
					t.Errorf("%s: got %+v (present %v), want type %c", p, h.Typeflag, ok, typ)
				}
			}
			for p, target := range tc.links {
				if got[p].Linkname != target {
					t.Errorf("%s links to %q, want %q", p, got[p].Linkname, target)
				}
			}
			for _, p := range tc.not {
				if _, ok := got[p]; ok {
					t.Errorf("%s is in the layer; it must not be", p)
				}
			}
		})
	}
}

// A dynamically linked host program brings its libraries and the dynamic
// loader, at their paths (through the host's symlinks).
func TestImageAddHostPathsBringsLibraries(t *testing.T) {
	prog := "/usr/bin/ls"
	if _, err := os.Stat(prog); err != nil || !isDynamicELF(prog) {
		t.Skipf("%s is not a dynamic program here", prog)
	}
	libs, err := sharedLibs(prog)
	if err != nil {
		t.Fatal(err)
	}
	im := NewImage("localhost/test:1")
	if err := im.AddHostPaths(prog); err != nil {
		t.Fatal(err)
	}
	got := layerEntries(t, im)
	for _, lib := range append(libs, prog) {
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := got[real[1:]]; !ok || h.Typeflag != tar.TypeReg {
			t.Errorf("%s (%s) missing from the image", lib, real)
		}
	}
	if len(libs) == 0 {
		t.Fatal("ldd listed no libraries")
	}
}

func TestBusyboxImageTarball(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("%s missing (Debian's busybox-static)", busyboxPath)
	}
	im, err := NewBusyboxImage(BusyboxImage)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.WriteTarball(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tag, _ := name.NewTag(BusyboxImage)
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || !slices.Equal(cf.Config.Cmd, []string{"/bin/sh"}) {
		t.Errorf("config: os %q cmd %q", cf.OS, cf.Config.Cmd)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.Linkname
	}
	if _, ok := found["bin/busybox"]; !ok {
		t.Error("bin/busybox missing")
	}
	if found["bin/sh"] != "/bin/busybox" {
		t.Errorf("bin/sh links to %q, want /bin/busybox", found["bin/sh"])
	}
}
