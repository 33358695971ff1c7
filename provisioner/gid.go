package provisioner

import (
	"fmt"
	"sync"
)

// GIDExhaustedError says a class's GID range has no free GID left.
type GIDExhaustedError struct {
	Class    string
	Min, Max int
}

func (e *GIDExhaustedError) Error() string {
	return fmt.Sprintf("StorageClass %q: every GID in gidMin..gidMax (%d..%d) is in use; widen the range with a new StorageClass or delete unused volumes", e.Class, e.Min, e.Max)
}

// gidTable hands out supplemental GIDs. A GID is never given to two
// volumes, whatever their class: each class only chooses the range. Each
// GID has an owner (the heketi volume name), so a retried Provision of the
// same volume gets the same GID back.
type gidTable struct {
	mu      sync.Mutex
	byGID   map[int]string
	byOwner map[string]int
}

func newGIDTable() *gidTable {
	return &gidTable{byGID: map[int]string{}, byOwner: map[string]int{}}
}

// Reserve records that owner holds gid (from a PV annotation or a heketi
// volume). A GID already held by another owner stays with that owner; the
// return value says whether owner now holds gid.
func (t *gidTable) Reserve(owner string, gid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.byGID[gid]; ok {
		return cur == owner
	}
	if old, ok := t.byOwner[owner]; ok {
		delete(t.byGID, old)
	}
	t.byGID[gid] = owner
	t.byOwner[owner] = gid
	return true
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
		delete(t.byGID, gid)
		delete(t.byOwner, owner)
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
			t.byGID[gid] = owner
			t.byOwner[owner] = gid
			return gid, nil
		}
	}
	return 0, &GIDExhaustedError{Class: class, Min: min, Max: max}
}

// Release frees owner's GID, if any.
func (t *gidTable) Release(owner string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gid, ok := t.byOwner[owner]; ok {
		delete(t.byGID, gid)
		delete(t.byOwner, owner)
	}
}

// Owner returns who holds gid.
func (t *gidTable) Owner(gid int) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.byGID[gid]
	return o, ok
}
