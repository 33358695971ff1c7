package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// heketi v10's mock executor cannot clone: its VolumeClone answers a clone
// without bricks and its VolumeInfo bricks heketi does not know, and
// heketi's clone then indexes the clone's bricks by the source's — an index
// out of range that takes the whole server down (POST /volumes/{id}/clone
// kills the test heketi). The test build adds one file to the mock
// executor's package (heketi's own files stay as they are but for one call
// in NewMockExecutor; see heketiModfile): the mock remembers the
// bricks each volume was created or expanded with, answers VolumeInfo with
// them, and answers a clone with the source's bricks under clone paths, as
// gluster's snapshot clone does. Volumes created before a restart of the
// server are unknown to it and fall back to the stock answers.
const mockCloneSource = `package mockexec

import (
	"fmt"
	"sync"

	"github.com/heketi/heketi/executors"
)

func glusterkubeClones(m *MockExecutor) {
	var mu sync.Mutex
	bricks := map[string][]executors.Brick{}
	record := func(name string, in []executors.BrickInfo) {
		for _, b := range in {
			bricks[name] = append(bricks[name], executors.Brick{Name: b.Host + ":" + b.Path})
		}
	}
	create, expand, info := m.MockVolumeCreate, m.MockVolumeExpand, m.MockVolumeInfo
	m.MockVolumeCreate = func(host string, v *executors.VolumeRequest) (*executors.Volume, error) {
		mu.Lock()
		delete(bricks, v.Name)
		record(v.Name, v.Bricks)
		mu.Unlock()
		return create(host, v)
	}
	m.MockVolumeExpand = func(host string, v *executors.VolumeRequest) (*executors.Volume, error) {
		mu.Lock()
		record(v.Name, v.Bricks)
		mu.Unlock()
		return expand(host, v)
	}
	m.MockVolumeInfo = func(host string, name string) (*executors.Volume, error) {
		mu.Lock()
		b, ok := bricks[name]
		mu.Unlock()
		if !ok {
			return info(host, name)
		}
		return &executors.Volume{VolumeName: name, Bricks: executors.Bricks{BrickList: append([]executors.Brick(nil), b...)}}, nil
	}
	m.MockVolumeClone = func(host string, r *executors.VolumeCloneRequest) (*executors.Volume, error) {
		mu.Lock()
		defer mu.Unlock()
		src, ok := bricks[r.Volume]
		if !ok {
			return nil, fmt.Errorf("mock executor: volume %s was not created since heketi started; cannot clone it", r.Volume)
		}
		var out []executors.Brick
		for _, b := range src {
			out = append(out, executors.Brick{Name: b.Name + "_" + r.Clone})
		}
		bricks[r.Clone] = out
		return &executors.Volume{VolumeName: r.Clone, Bricks: executors.Bricks{BrickList: out}}, nil
	}
}
`

// heketiModfile makes tmp/heketi-src, a copy of heketi's module with the
// patched mock executor, and returns a go.mod (tmp/heketi-src.mod, with
// hack/heketi's requirements) for go build -modfile that builds against
// it. (go build -overlay may not replace files in the module cache, and a
// module can only be replaced whole; heketi's is 4 MB.)
func heketiModfile(modDir, heketiSrc, tmp string) (string, error) {
	dst := filepath.Join(tmp, "heketi-src")
	err := filepath.WalkDir(heketiSrc, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(heketiSrc, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("copy heketi's module: %w", err)
	}
	pkg := filepath.Join(dst, "executors", "mockexec")
	mock, err := os.ReadFile(filepath.Join(pkg, "mock.go"))
	if err != nil {
		return "", err
	}
	const ret = "\treturn m, nil\n}\n"
	if n := strings.Count(string(mock), ret); n != 1 {
		return "", fmt.Errorf("patching heketi's mock executor: %d places to hook, want 1", n)
	}
	patched := strings.Replace(string(mock), ret, "\tglusterkubeClones(m)\n"+ret, 1)
	for name, body := range map[string]string{"mock.go": patched, "glusterkube_clone.go": mockCloneSource} {
		if err := os.WriteFile(filepath.Join(pkg, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	// heketi has no go.mod; its dependencies come from hack/heketi's.
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module github.com/heketi/heketi\n\ngo 1.13\n"), 0o644); err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", err
	}
	modfile := filepath.Join(tmp, "heketi-src.mod")
	mod = append(mod, []byte("\nreplace github.com/heketi/heketi => "+dst+"\n")...)
	if err := os.WriteFile(modfile, mod, 0o644); err != nil {
		return "", err
	}
	return modfile, os.WriteFile(strings.TrimSuffix(modfile, ".mod")+".sum", sum, 0o644)
}
