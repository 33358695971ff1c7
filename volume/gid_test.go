package volume

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestGIDTable(t *testing.T) {
	g := newGIDTable()
	if !g.Reserve("existing", 2000) {
		t.Fatal("reserve 2000")
	}
	a, err := g.Allocate("gold", "a", 2000, 2002)
	if err != nil || a != 2001 {
		t.Fatalf("first allocation: %d %v", a, err)
	}
	again, _ := g.Allocate("gold", "a", 2000, 2002)
	if again != a {
		t.Errorf("a retry of the same owner got %d, want %d", again, a)
	}
	b, _ := g.Allocate("gold", "b", 2000, 2002)
	if b != 2002 {
		t.Errorf("b got %d", b)
	}
	_, err = g.Allocate("gold", "c", 2000, 2002)
	var ex *GIDExhaustedError
	if !errors.As(err, &ex) || ex.Min != 2000 || ex.Max != 2002 {
		t.Fatalf("exhausted range: %v", err)
	}
	g.Release("a")
	c, err := g.Allocate("gold", "c", 2000, 2002)
	if err != nil || c != 2001 {
		t.Errorf("after release: %d %v", c, err)
	}
	if g.Reserve("other", 2002) {
		t.Error("Reserve says 2002 was free; b holds it")
	}
	// A clone shares its source's GID: the GID stays taken until both go.
	g.Release("other")
	// A class whose range moved gives the owner a GID in the new range.
	d, _ := g.Allocate("silver", "b", 3000, 3010)
	if d != 3000 {
		t.Errorf("range change: %d", d)
	}
	if o, ok := g.Owner(2002); ok {
		t.Errorf("2002 still held by %s", o)
	}
}

// heketi gives a clone its source's GID: the GID is free again only when
// both volumes are gone.
func TestGIDTableSharedByClone(t *testing.T) {
	g := newGIDTable()
	if !g.Reserve("source", 2000) {
		t.Fatal("reserve 2000")
	}
	if g.Reserve("clone", 2000) {
		t.Error("Reserve says 2000 was free; source holds it")
	}
	g.Release("source")
	if gid, _ := g.Allocate("gold", "new", 2000, 2001); gid != 2001 {
		t.Errorf("with the clone still holding 2000 a new volume got %d", gid)
	}
	g.Release("clone")
	if gid, _ := g.Allocate("gold", "newer", 2000, 2001); gid != 2000 {
		t.Errorf("after both are gone a new volume got %d, want 2000", gid)
	}
}

func TestGIDTableConcurrentUnique(t *testing.T) {
	g := newGIDTable()
	const n = 50
	var wg sync.WaitGroup
	got := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gid, err := g.Allocate("gold", fmt.Sprint("v", i), 2000, 2000+n-1)
			if err != nil {
				t.Error(err)
			}
			got[i] = gid
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, gid := range got {
		if seen[gid] {
			t.Fatalf("GID %d handed out twice", gid)
		}
		seen[gid] = true
	}
}
