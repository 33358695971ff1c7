package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Temp dirs of environments and heketi servers are owned: the process that
// made one holds a lock on its ".owner" file for as long as it lives. A test
// binary that dies without cleaning up (SIGKILL, go test -timeout) releases
// the lock with its death, so the next start can tell its dirs from dirs in
// use and remove them. On SIGINT/SIGTERM, Main removes them itself.

const ownerFile = ".owner"

var (
	ownedMu sync.Mutex
	owned   = map[string]*os.File{} // dir -> its locked owner file
)

// dirCleanups, by temp dir prefix, undo what a dir's owner made outside
// the dir (a real node's cgroups), before the dir is removed: by its owner,
// on a signal, or by the sweep after the owner died.
var dirCleanups = map[string]func(dir string){}

func cleanupOutside(dir string) {
	for prefix, f := range dirCleanups {
		if strings.HasPrefix(filepath.Base(dir), prefix) {
			f(dir)
		}
	}
}

// ownedTempDir sweeps stale dirs with the prefix, then makes a new one and
// locks it.
func ownedTempDir(prefix string) (string, error) {
	sweepStaleDirs(prefix)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(dir, ownerFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		_ = os.RemoveAll(dir)
		return "", err
	}
	ownedMu.Lock()
	owned[dir] = f
	ownedMu.Unlock()
	return dir, nil
}

// removeOwnedDir removes a dir made by ownedTempDir (or any dir: then it
// is only removed).
func removeOwnedDir(dir string) error {
	ownedMu.Lock()
	f := owned[dir]
	delete(owned, dir)
	ownedMu.Unlock()
	cleanupOutside(dir)
	err := os.RemoveAll(dir)
	if f != nil {
		f.Close()
	}
	return err
}

// removeAllOwnedDirs removes every owned dir (on signals).
func removeAllOwnedDirs() {
	ownedMu.Lock()
	dirs := make([]string, 0, len(owned))
	for d := range owned {
		dirs = append(dirs, d)
	}
	ownedMu.Unlock()
	for _, d := range dirs {
		_ = removeOwnedDir(d)
	}
}

// sweepStaleDirs removes dirs with the prefix whose owner is gone. A dir
// without an owner file is left alone: it may be one being made right now,
// or not ours.
func sweepStaleDirs(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			cleanupOutside(dir)
			_ = os.RemoveAll(dir)
		}
		f.Close()
	}
}
