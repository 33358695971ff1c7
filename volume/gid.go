package volume

import (
	"fmt"
	"slices"
	"sync"
)

// GIDExhaustedError says a class's GID range has no free GID left.
type GIDExhaustedError struct {
	Class    string
	Min, Max int
}

func (e *GIDExhaustedError) Error() string {
	class := "StorageClass"
	if e.Class != "" {
		class = fmt.Sprintf("StorageClass %q", e.Class)
	}
	return fmt.Sprintf("%s: every GID in gidMin..gidMax (%d..%d) is in use; widen the range with a new StorageClass or delete unused volumes", class, e.Min, e.Max)
}

// gidTable hands out supplemental GIDs. A GID is never given to two
// volumes, whatever their class: each class only chooses the range. Each
// GID has owners (heketi volume names), so a retried create of the same
// volume gets the same GID back. A GID has more than one owner only when
// heketi itself gave it to several volumes: a clone keeps its source's GID
// (heketi's clone API cannot change it), and the GID stays taken until
// the last of them is gone.
type gidTable struct {
	mu      sync.Mutex
	byGID   map[int][]string
	byOwner map[string]int
}

func newGIDTable() *gidTable {
	return &gidTable{byGID: map[int][]string{}, byOwner: map[string]int{}}
}

// Reserve records that owner holds gid (read from a PV annotation or a
// heketi volume: a fact, so it is always recorded). An owner that held
// another GID moves. The return value says whether no other owner holds
// gid.
func (t *gidTable) Reserve(owner string, gid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.byOwner[owner]; ok {
		if old == gid {
			return len(t.byGID[gid]) == 1
		}
		t.drop(owner, old)
	}
	others := len(t.byGID[gid])
	t.byGID[gid] = append(t.byGID[gid], owner)
	t.byOwner[owner] = gid
	return others == 0
}

// Allocate returns owner's GID if it holds one in [min, max], else the
// lowest free GID in that range.
func (t *gidTable) Allocate(class, owner string, min, max int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gid, ok := t.byOwner[owner]; ok {
		if gid >= min && gid <= max {
			return gid, nil
		}
		t.drop(owner, gid)
	}
	used := 0
	for gid := range t.byGID {
		if gid >= min && gid <= max {
			used++
		}
	}
	if int64(used) >= int64(max)-int64(min)+1 {
		return 0, &GIDExhaustedError{Class: class, Min: min, Max: max}
	}
	// At most used+1 steps: the range holds a free GID.
	for gid := min; gid <= max; gid++ {
		if _, taken := t.byGID[gid]; !taken {
			t.byGID[gid] = []string{owner}
			t.byOwner[owner] = gid
			return gid, nil
		}
	}
	return 0, &GIDExhaustedError{Class: class, Min: min, Max: max}
}

// Release frees owner's hold on its GID, if any.
func (t *gidTable) Release(owner string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gid, ok := t.byOwner[owner]; ok {
		t.drop(owner, gid)
	}
}

// drop removes owner from gid; the caller holds mu.
func (t *gidTable) drop(owner string, gid int) {
	delete(t.byOwner, owner)
	owners := slices.DeleteFunc(t.byGID[gid], func(o string) bool { return o == owner })
	if len(owners) == 0 {
		delete(t.byGID, gid)
	} else {
		t.byGID[gid] = owners
	}
}

// Owner returns who holds gid (the first owner).
func (t *gidTable) Owner(gid int) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.byGID[gid]
	if len(o) == 0 {
		return "", false
	}
	return o[0], true
}
