package csi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The node server keeps a record of each publish in its state folder (a
// host folder that outlives the plugin's container), so that a plugin
// started again knows which targets should be mounted, with what, and for
// which pod, and can heal the ones whose FUSE client died. A record holds
// no secret: the volume, its servers, the mount options (the class's
// mountOptions and ours) and the pod's name.

// record is one publish.
type record struct {
	VolumeID string   `json:"volumeID"`
	Target   string   `json:"target"`
	Source   string   `json:"source"`
	Volume   string   `json:"volume"`
	Options  []string `json:"options"`
	Pod      *podRef  `json:"pod,omitempty"`
	// SingleWriter: published SINGLE_NODE_SINGLE_WRITER.
	SingleWriter bool      `json:"singleWriter,omitempty"`
	Published    time.Time `json:"published"`
}

// records is the state folder; an empty dir keeps nothing.
type records struct{ dir string }

const recordSuffix = ".json"

func (r records) path(target string) string {
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(r.dir, "publish-"+hex.EncodeToString(sum[:12])+recordSuffix)
}

// save writes rec atomically (a temp file renamed over the old one), so a
// plugin killed at any point never leaves half a record. It does not
// fsync: a record only matters while the node runs (after a node crash
// every FUSE mount is gone and the kubelet publishes again), and the page
// cache outlives the plugin's process.
func (r records) save(rec record) error {
	if r.dir == "" {
		return nil
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	p := r.path(rec.Target)
	tmp, err := os.CreateTemp(r.dir, ".publish-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save the publish record of %s: %w", rec.Target, err)
	}
	return nil
}

// load returns the record of target, nil when there is none.
func (r records) load(target string) (*record, error) {
	if r.dir == "" {
		return nil, nil
	}
	return readRecord(r.path(target))
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("publish record %s: %w", path, err)
	}
	return &rec, nil
}

// remove forgets target.
func (r records) remove(target string) error {
	if r.dir == "" {
		return nil
	}
	if err := os.Remove(r.path(target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// list returns every record; unreadable ones are reported, not fatal.
func (r records) list() ([]record, []error) {
	if r.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []record
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "publish-") || !strings.HasSuffix(e.Name(), recordSuffix) {
			continue
		}
		rec, err := readRecord(filepath.Join(r.dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec != nil {
			out = append(out, *rec)
		}
	}
	return out, errs
}
