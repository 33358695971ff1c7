package volume

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Page is one page of List.
type Page struct {
	Volumes []*Volume
	// Next is the heketi id to pass as after for the next page; "" when
	// this page is the last.
	Next string
}

// List returns the server's volumes in the order of their heketi ids
// (a stable order, so pages neither repeat nor skip a volume that existed
// throughout), at most max of them (0: all), starting after heketi id
// after ("" from the first). after need not exist any more: a page may
// start after a volume deleted since. A malformed after is IsInvalid.
//
// heketi hides volumes still being created; they show up once made.
func (sv *Server) List(ctx context.Context, after string, max int) (Page, error) {
	if after != "" && !heketiIDRe.MatchString(after) {
		return Page{}, classify(kindInvalid, false, fmt.Errorf("%q is not a heketi volume id to list after", after))
	}
	l, err := sv.h.VolumeList(ctx)
	if err != nil {
		return Page{}, wrapHeketi(sv.cr, err, "list heketi volumes")
	}
	ids := slices.Clone(l.Volumes)
	slices.Sort(ids)
	start, _ := slices.BinarySearch(ids, after)
	if start < len(ids) && ids[start] == after {
		start++
	}
	ids = ids[start:]
	var page Page
	for len(ids) > 0 && (max <= 0 || len(page.Volumes) < max) {
		// Read what the page still needs; a volume deleted meanwhile is
		// skipped and the next one takes its place.
		n := len(ids)
		if max > 0 {
			n = min(n, max-len(page.Volumes))
		}
		batch, rest := ids[:n], ids[n:]
		vols, err := sv.readAll(ctx, batch)
		if err != nil {
			return Page{}, err
		}
		page.Volumes = append(page.Volumes, vols...)
		ids = rest
	}
	if len(ids) > 0 && len(page.Volumes) > 0 {
		page.Next = page.Volumes[len(page.Volumes)-1].ID
	}
	return page, nil
}

// readAll reads the volumes in ids, in their order, leaving out those
// heketi no longer has.
func (sv *Server) readAll(ctx context.Context, ids []string) ([]*Volume, error) {
	out := make([]*Volume, len(ids))
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	var mu sync.Mutex
	err := forEach(ctx, ids, func(ctx context.Context, id string) error {
		info, err := sv.h.VolumeInfo(ctx, id)
		if heketi.IsNotFound(err) {
			return nil
		} else if err != nil {
			return wrapHeketi(sv.cr, err, "read heketi volume %s", id)
		}
		v := sv.volume(info)
		mu.Lock()
		out[pos[id]] = v
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(v *Volume) bool { return v == nil }), nil
}
