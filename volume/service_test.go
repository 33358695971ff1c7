package volume

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume/fakeheketi"
)

var _ Heketi = (*fakeheketi.Heketi)(nil)
var _ PendingOperations = (*fakeheketi.Heketi)(nil)

const testURL = "http://heketi.test:8080"

type fixture struct {
	fake   *fakeheketi.Heketi
	svc    *Service
	dialed []heketi.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{fake: fakeheketi.New()}
	f.svc = f.restart()
	return f
}

// restart is a fresh process on the same heketi: empty index, empty GID
// table.
func (f *fixture) restart() *Service {
	return New(Config{
		Default: heketi.Config{URL: testURL, User: "admin", Key: "adminkey"},
		Dial: func(cfg heketi.Config) (Heketi, error) {
			f.dialed = append(f.dialed, cfg)
			return f.fake, nil
		},
	})
}

func (f *fixture) server(t *testing.T, svc *Service) *Server {
	t.Helper()
	cr, _ := svc.DefaultCredentials("")
	sv, err := svc.Server(cr)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func mustParse(t *testing.T, params map[string]string) *ClassConfig {
	t.Helper()
	cfg, err := ParseClass("gold", params)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func createReq(t *testing.T, name string, gib int, params map[string]string) CreateRequest {
	return CreateRequest{Name: name, SizeGiB: gib, Class: "gold", Params: mustParse(t, params)}
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	vol, err := sv.Create(context.Background(), createReq(t, "vol_a", 2, map[string]string{"volumetype": "replicate:3", "gidMin": "40000", "gidMax": "40010", "volumeoptions": "client.ssl on", "snapfactor": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	if vol.Name != "vol_a" || vol.SizeGiB != 2 || vol.GID != 40000 || vol.Cluster != fakeheketi.Cluster || vol.URL != testURL || vol.Reused {
		t.Errorf("volume %+v", vol)
	}
	if strings.Join(vol.Hosts, ",") != "10.0.0.1,10.0.0.2,10.0.0.3" {
		t.Errorf("hosts %v", vol.Hosts)
	}
	req := f.fake.Creates()[0]
	if req.Size != 2 || req.Gid != 40000 || req.Durability.Replicate.Replica != 3 || req.GlusterVolumeOptions[0] != "client.ssl on" || !req.Snapshot.Enable || req.Snapshot.Factor != 2 {
		t.Errorf("create request %+v", req)
	}
	id, err := f.svc.ID(vol)
	if err != nil || id.String() != vol.ID {
		t.Errorf("CSI id %q %v, want the bare heketi id on the default server", id, err)
	}
	// Asked again (a retry): the same volume, no second create.
	again, err := sv.Create(context.Background(), createReq(t, "vol_a", 2, nil))
	if err != nil || again.ID != vol.ID || !again.Reused || f.fake.Count("volume_create") != 1 {
		t.Fatalf("retry: %+v %v, %d creates", again, err, f.fake.Count("volume_create"))
	}
}

// A crash after heketi made the volume and before the caller recorded it:
// the next process finds the volume by name instead of making a second one.
func TestCreateAfterRestartReusesVolume(t *testing.T) {
	f := newFixture(t)
	if _, err := f.server(t, f.svc).Create(context.Background(), createReq(t, "vol_crash", 1, nil)); err != nil {
		t.Fatal(err)
	}
	restarted := f.restart()
	vol, err := f.server(t, restarted).Create(context.Background(), createReq(t, "vol_crash", 1, nil))
	if err != nil || !vol.Reused || vol.GID != 2000 {
		t.Fatalf("after restart: %+v %v", vol, err)
	}
	if n := f.fake.Count("volume_create"); n != 1 {
		t.Fatalf("%d creates", n)
	}
	// The reused volume's GID is held: another volume gets a new one.
	other, err := f.server(t, restarted).Create(context.Background(), createReq(t, "vol_other", 1, nil))
	if err != nil || other.GID != 2001 {
		t.Errorf("second volume: gid %v err %v", other, err)
	}
}

func TestCreateOutcomes(t *testing.T) {
	timeout := &heketi.Error{Op: "volume_create", Err: context.DeadlineExceeded, Message: "context deadline exceeded"}
	tests := []struct {
		name        string
		fail        func(*api.VolumeCreateRequest) (bool, error)
		wantErr     string
		wantUnknown bool
		wantNoSpace bool
		volumes     int
	}{
		{"timeout while heketi goes on", func(*api.VolumeCreateRequest) (bool, error) { return true, timeout }, "outcome unknown", true, false, 1},
		{"timeout and nothing made", func(*api.VolumeCreateRequest) (bool, error) { return false, timeout }, "outcome unknown", true, false, 1},
		{"no space is final", func(*api.VolumeCreateRequest) (bool, error) {
			return false, fakeheketi.Err("volume_create", http.StatusInternalServerError, "No space")
		}, "No space", false, true, 1},
		{"busy heketi never got it", func(*api.VolumeCreateRequest) (bool, error) {
			return false, fakeheketi.Err("volume_create", http.StatusTooManyRequests, "busy")
		}, "busy", false, false, 1},
		{"user key: created but unreadable", func(*api.VolumeCreateRequest) (bool, error) {
			return true, fakeheketi.Err("volume_create", http.StatusUnauthorized, "Administrator access required")
		}, "admin user", true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			sv := f.server(t, f.svc)
			f.fake.FailCreate = tt.fail
			_, err := sv.Create(context.Background(), createReq(t, "vol_x", 1, nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || IsOutcomeUnknown(err) != tt.wantUnknown || IsNoSpace(err) != tt.wantNoSpace {
				t.Fatalf("first attempt: %v (unknown=%v nospace=%v)", err, IsOutcomeUnknown(err), IsNoSpace(err))
			}
			f.fake.FailCreate = nil
			vol, err := sv.Create(context.Background(), createReq(t, "vol_x", 1, nil))
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := len(f.fake.VolumeNames()); got != tt.volumes {
				t.Errorf("%d heketi volumes, want %d", got, tt.volumes)
			}
			if vol.GID != 2000 {
				t.Errorf("gid %d", vol.GID)
			}
		})
	}
}

// After a create with an unknown outcome, a definite failure of a later
// attempt still says the volume may exist.
func TestCreateUncertainStaysUncertain(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	f.fake.FailCreate = func(*api.VolumeCreateRequest) (bool, error) {
		return false, &heketi.Error{Op: "volume_create", Err: context.DeadlineExceeded}
	}
	if _, err := sv.Create(context.Background(), createReq(t, "vol_u", 1, nil)); !IsOutcomeUnknown(err) {
		t.Fatalf("first: %v", err)
	}
	f.fake.FailCreate = func(*api.VolumeCreateRequest) (bool, error) {
		return false, fakeheketi.Err("volume_create", http.StatusInternalServerError, "No space")
	}
	_, err := sv.Create(context.Background(), createReq(t, "vol_u", 1, nil))
	if !IsNoSpace(err) || !IsOutcomeUnknown(err) {
		t.Fatalf("second: %v (nospace=%v unknown=%v)", err, IsNoSpace(err), IsOutcomeUnknown(err))
	}
}

// Heketi refuses a name in use; Create finds the earlier volume.
func TestCreateNameInUseFindsVolume(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	// Index built while the volume did not exist yet...
	if err := sv.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	// ...then another process made it.
	if _, err := f.fake.VolumeCreate(context.Background(), &api.VolumeCreateRequest{Name: "vol_raced", Size: 1, Gid: 2000}); err != nil {
		t.Fatal(err)
	}
	vol, err := sv.Create(context.Background(), createReq(t, "vol_raced", 1, nil))
	if err != nil || !vol.Reused {
		t.Fatalf("%+v %v", vol, err)
	}
	if n := len(f.fake.VolumeNames()); n != 1 {
		t.Errorf("%d volumes", n)
	}
}

func TestCreateAdminRequiredNeverCreates(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	f.fake.FailTopo = func() error {
		return fakeheketi.Err("cluster_list", http.StatusUnauthorized, "Administrator access required")
	}
	if err := sv.Prepare(context.Background()); err == nil || !strings.Contains(err.Error(), "needs heketi's admin user") || !IsCredentialsRefused(err) {
		t.Fatalf("Prepare: %v", err)
	}
	if _, err := sv.Create(context.Background(), createReq(t, "vol_a", 1, nil)); err == nil || IsOutcomeUnknown(err) {
		t.Fatalf("Create: %v", err)
	}
	if f.fake.Count("volume_create") != 0 {
		t.Error("created a volume it could never delete")
	}
}

func TestCreateGIDRangeExhausted(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	tiny := map[string]string{"gidMin": "3000", "gidMax": "3000"}
	if _, err := sv.Create(context.Background(), createReq(t, "vol_a", 1, tiny)); err != nil {
		t.Fatal(err)
	}
	_, err := sv.Create(context.Background(), createReq(t, "vol_b", 1, tiny))
	if !IsGIDExhausted(err) || !strings.Contains(err.Error(), "3000..3000") || IsOutcomeUnknown(err) {
		t.Fatalf("%v", err)
	}
	if f.fake.Count("volume_create") != 1 {
		t.Errorf("%d creates", f.fake.Count("volume_create"))
	}
	// Deleting the first frees its GID.
	vol, _ := sv.Lookup(context.Background(), "vol_a")
	if err := sv.Delete(context.Background(), vol.ID, "vol_a"); err != nil {
		t.Fatal(err)
	}
	if v, err := sv.Create(context.Background(), createReq(t, "vol_b", 1, tiny)); err != nil || v.GID != 3000 {
		t.Fatalf("after delete: %+v %v", v, err)
	}
}

func TestCreateNoSpace(t *testing.T) {
	f := newFixture(t)
	_, err := f.server(t, f.svc).Create(context.Background(), createReq(t, "vol_big", fakeheketi.DeviceGiB+1, nil))
	if !IsNoSpace(err) || IsOutcomeUnknown(err) || !strings.Contains(err.Error(), "No space") {
		t.Fatalf("%v", err)
	}
	if _, held := f.svc.GIDOwner(2000); held {
		t.Error("the GID of a volume never made is still held")
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(f *fixture, id string) (delID, name string)
		wantErr  func(error) bool
		wantVols int
	}{
		{"deletes", func(_ *fixture, id string) (string, string) { return id, "vol_d" }, nil, 0},
		{"without a name (CSI)", func(_ *fixture, id string) (string, string) { return id, "" }, nil, 0},
		{"already gone", func(f *fixture, id string) (string, string) {
			_ = f.fake.VolumeDelete(context.Background(), id)
			return id, "vol_d"
		}, nil, 0},
		{"name mismatch refuses", func(_ *fixture, id string) (string, string) { return id, "someone-else" },
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "refusing") }, 1},
		{"hidden by a running create", func(f *fixture, id string) (string, string) {
			f.fake.Pending = map[string]*api.PendingOperationDetails{"op": {
				PendingOperationInfo: api.PendingOperationInfo{Id: "op", TypeName: "create-volume"},
				Changes:              []api.PendingChangeInfo{{Id: "ffffffffffffffffffffffffffffffff"}},
			}}
			return "ffffffffffffffffffffffffffffffff", ""
		}, IsInFlight, 1},
		{"heketi fails", func(f *fixture, id string) (string, string) {
			f.fake.FailDelete = func(string) error { return fakeheketi.Err("volume_delete", http.StatusInternalServerError, "boom") }
			return id, "vol_d"
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "boom") }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			vol, err := f.server(t, f.svc).Create(context.Background(), createReq(t, "vol_d", 1, nil))
			if err != nil {
				t.Fatal(err)
			}
			id, name := tt.mutate(f, vol.ID)
			err = f.server(t, f.restart()).Delete(context.Background(), id, name)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("Delete: %v", err)
			}
			if n := len(f.fake.VolumeNames()); n != tt.wantVols {
				t.Errorf("%d volumes left, want %d", n, tt.wantVols)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	timeout := &heketi.Error{Op: "volume_expand", Err: context.DeadlineExceeded}
	running := func(id string) map[string]*api.PendingOperationDetails {
		return map[string]*api.PendingOperationDetails{"op1": {
			PendingOperationInfo: api.PendingOperationInfo{Id: "op1", TypeName: "expand-volume", SubStatus: "in-flight"},
			Changes:              []api.PendingChangeInfo{{Id: "brick1"}, {Id: id}},
		}}
	}
	tests := []struct {
		name        string
		want        int
		setup       func(f *fixture, id string)
		wantErr     func(error) bool
		wantSize    int
		wantExpands int
	}{
		{"grows", 3, nil, nil, 3, 1},
		{"never shrinks", 1, func(f *fixture, id string) { f.fake.SetSize(id, 2) }, nil, 2, 0},
		{"already grown before a crash: no second expand", 3, func(f *fixture, id string) { f.fake.SetSize(id, 3) }, nil, 3, 0},
		{"earlier expansion still running", 3, func(f *fixture, id string) { f.fake.Pending = running(id) }, IsInFlight, 1, 0},
		{"failed earlier expansion does not block", 3, func(f *fixture, id string) {
			f.fake.Pending = running(id)
			f.fake.Pending["op1"].Status = "failed"
			f.fake.Pending["op1"].SubStatus = ""
		}, nil, 3, 1},
		{"timed out: outcome unknown", 3, func(f *fixture, _ string) {
			f.fake.FailExpand = func(string, int) (bool, error) { return true, timeout }
		}, IsOutcomeUnknown, 3, 1},
		{"no space", fakeheketi.DeviceGiB + 5, nil, IsNoSpace, 1, 1},
		{"unknown volume", 3, func(f *fixture, id string) { _ = f.fake.VolumeDelete(context.Background(), id) }, IsNotFound, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			sv := f.server(t, f.svc)
			vol, err := sv.Create(context.Background(), createReq(t, "vol_e", 1, nil))
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(f, vol.ID)
			}
			got, err := sv.Expand(context.Background(), vol.ID, tt.want)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("Expand: %v", err)
			}
			if err == nil && got.SizeGiB != tt.wantSize {
				t.Errorf("returned size %d, want %d", got.SizeGiB, tt.wantSize)
			}
			if s := f.fake.Size(vol.ID); s != tt.wantSize {
				t.Errorf("heketi size %d, want %d", s, tt.wantSize)
			}
			if n := f.fake.Count("volume_expand"); n != tt.wantExpands {
				t.Errorf("%d expands, want %d", n, tt.wantExpands)
			}
			// A retry after a timed-out expansion that went on does not grow
			// the volume again.
			f.fake.FailExpand, f.fake.Pending = nil, nil
			if IsOutcomeUnknown(err) && !IsInFlight(err) {
				if _, err := sv.Expand(context.Background(), vol.ID, tt.want); err != nil || f.fake.Size(vol.ID) != tt.want {
					t.Fatalf("retry: %v, size %d", err, f.fake.Size(vol.ID))
				}
				if n := f.fake.Count("volume_expand"); n != tt.wantExpands {
					t.Errorf("retry expanded again: %d expands", n)
				}
			}
		})
	}
}

func TestClone(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	ctx := context.Background()
	src, err := sv.Create(ctx, createReq(t, "vol_src", 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone", Source: src.ID, SizeGiB: 3}); !IsInvalid(err) || !strings.Contains(err.Error(), "cannot grow a cloned volume") {
		t.Fatalf("a clone larger than its source: %v", err)
	}
	clone, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone", Source: src.ID, SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if clone.Name != "vol_clone" || clone.ID == src.ID || clone.SizeGiB != 2 || clone.GID != src.GID || clone.Reused {
		t.Errorf("clone %+v of %+v", clone, src)
	}
	again, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone", Source: src.ID, SizeGiB: 2})
	if err != nil || again.ID != clone.ID || !again.Reused || f.fake.Count("volume_clone") != 1 || f.fake.Count("volume_expand") != 0 {
		t.Fatalf("retry: %+v %v (%d clones, %d expands)", again, err, f.fake.Count("volume_clone"), f.fake.Count("volume_expand"))
	}
	// The shared GID stays taken while the clone lives.
	if err := sv.Delete(ctx, src.ID, "vol_src"); err != nil {
		t.Fatal(err)
	}
	if v, err := sv.Create(ctx, createReq(t, "vol_new", 1, nil)); err != nil || v.GID == clone.GID {
		t.Errorf("new volume got the clone's GID %d: %v", clone.GID, err)
	}

	// A clone of the source still running: no second clone.
	src2, _ := sv.Create(ctx, createReq(t, "vol_src2", 1, nil))
	f.fake.Pending = map[string]*api.PendingOperationDetails{"op": {
		PendingOperationInfo: api.PendingOperationInfo{Id: "op", TypeName: "clone-volume"},
		Changes:              []api.PendingChangeInfo{{Id: src2.ID}},
	}}
	if _, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone2", Source: src2.ID}); !IsInFlight(err) {
		t.Fatalf("with a clone running: %v", err)
	}
	f.fake.Pending = nil
	if _, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone3", Source: "ffffffffffffffffffffffffffffffff"}); !IsNotFound(err) {
		t.Fatalf("unknown source: %v", err)
	}
	// A timed-out clone that went on: the retry finds it.
	f.fake.FailClone = func(string, string) (bool, error) {
		return true, &heketi.Error{Op: "volume_clone", Err: context.DeadlineExceeded}
	}
	if _, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone4", Source: src2.ID}); !IsOutcomeUnknown(err) {
		t.Fatalf("timed-out clone: %v", err)
	}
	f.fake.FailClone = nil
	c4, err := sv.Clone(ctx, CloneRequest{Name: "vol_clone4", Source: src2.ID})
	if err != nil || !c4.Reused {
		t.Fatalf("retry after a timed-out clone: %+v %v", c4, err)
	}
	n := 0
	for _, name := range f.fake.VolumeNames() {
		if name == "vol_clone4" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d volumes named vol_clone4", n)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	ctx := context.Background()
	var ids []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		v, err := sv.Create(ctx, createReq(t, "vol_"+n, 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID) // the fake's ids ascend
	}
	all, err := sv.List(ctx, "", 0)
	if err != nil || len(all.Volumes) != 5 || all.Next != "" {
		t.Fatalf("all: %d volumes next %q %v", len(all.Volumes), all.Next, err)
	}
	p1, err := sv.List(ctx, "", 2)
	if err != nil || len(p1.Volumes) != 2 || p1.Next != ids[1] {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	// The last volume of the page goes; the next page still starts right.
	if err := sv.Delete(ctx, ids[1], ""); err != nil {
		t.Fatal(err)
	}
	p2, err := sv.List(ctx, p1.Next, 2)
	if err != nil || len(p2.Volumes) != 2 || p2.Volumes[0].ID != ids[2] || p2.Next != ids[3] {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
	p3, err := sv.List(ctx, p2.Next, 2)
	if err != nil || len(p3.Volumes) != 1 || p3.Volumes[0].ID != ids[4] || p3.Next != "" {
		t.Fatalf("page 3: %+v %v", p3, err)
	}
	if _, err := sv.List(ctx, "not-an-id", 2); !IsInvalid(err) {
		t.Fatalf("bad token: %v", err)
	}
}

func TestCapacity(t *testing.T) {
	f := newFixture(t)
	sv := f.server(t, f.svc)
	ctx := context.Background()
	tests := []struct {
		params map[string]string
		want   int64
	}{
		{nil, fakeheketi.DeviceGiB * GiB},                                                 // 3 devices, replica 3
		{map[string]string{"volumetype": "none"}, 3 * fakeheketi.DeviceGiB * GiB},         // all of it
		{map[string]string{"volumetype": "disperse:2:1"}, 2 * fakeheketi.DeviceGiB * GiB}, // 2 of 3
		{map[string]string{"snapfactor": "2"}, fakeheketi.DeviceGiB * GiB / 2},
	}
	for _, tt := range tests {
		got, err := sv.Capacity(ctx, mustParse(t, tt.params))
		if err != nil || got != tt.want {
			t.Errorf("%v: %d %v, want %d", tt.params, got, err, tt.want)
		}
	}
	if _, err := sv.Create(ctx, createReq(t, "vol_10", 10, nil)); err != nil {
		t.Fatal(err)
	}
	if got, _ := sv.Capacity(ctx, mustParse(t, nil)); got != (fakeheketi.DeviceGiB-10)*GiB {
		t.Errorf("after a 10 GiB volume: %d GiB", got/GiB)
	}
}

func TestClassCredentials(t *testing.T) {
	secrets := map[string]string{"gk/heketi": "fromsecret"}
	read := func(_ context.Context, ns, name string) (string, error) {
		if k, ok := secrets[ns+"/"+name]; ok {
			return k, nil
		}
		return "", &ParamError{Class: "c", Problem: "Secret " + ns + "/" + name + " not found"}
	}
	tests := []struct {
		name                       string
		def                        heketi.Config
		params                     map[string]string
		wantURL, wantUser, wantKey string
		wantRef                    string
		wantErr                    string
	}{
		{"defaults", heketi.Config{URL: testURL, User: "admin", Key: "adminkey"}, nil, testURL, "admin", "adminkey", "", ""},
		{"secret", heketi.Config{URL: testURL}, map[string]string{"resturl": "http://other:1", "restuser": "admin", "secretNamespace": "gk", "secretName": "heketi"}, "http://other:1", "admin", "fromsecret", "gk/heketi", ""},
		{"inline key", heketi.Config{URL: testURL}, map[string]string{"resturl": "http://other:1", "restuserkey": "inline"}, "http://other:1", "admin", "inline", "", ""},
		{"no auth", heketi.Config{URL: testURL, User: "admin", Key: "k"}, map[string]string{"resturl": "http://noauth:1"}, "http://noauth:1", "", "", "", ""},
		{"auth off", heketi.Config{URL: testURL, User: "admin", Key: "k"}, map[string]string{"restauthenabled": "false"}, testURL, "", "", "", ""},
		{"default server with a trailing slash", heketi.Config{URL: testURL + "/", User: "admin", Key: "k"}, map[string]string{"resturl": testURL}, testURL, "admin", "k", "", ""},
		{"missing secret", heketi.Config{URL: testURL}, map[string]string{"secretNamespace": "gk", "secretName": "nope"}, "", "", "", "", "not found"},
		{"user without key elsewhere", heketi.Config{URL: testURL}, map[string]string{"resturl": "http://other:1", "restuser": "bob"}, "", "", "", "", "without a key"},
		{"no server at all", heketi.Config{}, nil, "", "", "", "", "the heketi URL is not set"},
		{"auth on without a key", heketi.Config{URL: testURL}, map[string]string{"restauthenabled": "true"}, "", "", "", "", "no key is known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := New(Config{Default: tt.def})
			cr, err := svc.ClassCredentials(context.Background(), "c", mustParse(t, tt.params), read)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "--") {
					t.Errorf("error names a command-line flag: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cr.URL != tt.wantURL || cr.User != tt.wantUser || cr.Key != tt.wantKey || cr.SecretRef() != tt.wantRef {
				t.Errorf("got %+v", cr)
			}
		})
	}
}

func TestSizeGiB(t *testing.T) {
	tests := []struct {
		bytes   int64
		want    int
		invalid bool
	}{
		{0, 1, false}, {1, 1, false}, {GiB, 1, false}, {GiB + 1, 2, false}, {1500 << 20, 2, false},
		{maxGiB * GiB, int(maxGiB), false}, {maxGiB*GiB + 1, 0, true}, {1<<63 - 1, 0, true},
	}
	for _, tt := range tests {
		got, err := SizeGiB(tt.bytes)
		if got != tt.want || IsInvalid(err) != tt.invalid {
			t.Errorf("SizeGiB(%d) = %d, %v", tt.bytes, got, err)
		}
	}
}

// Placement by zone: the heketi options that do it are sent with the
// create; a volume that cannot be placed is never asked of heketi and
// keeps no GID; a local volume found again says its zone.
func TestCreatePlacement(t *testing.T) {
	f := newFixture(t)
	f.fake.NodeTags = map[string]map[string]string{}
	for i, n := range fakeheketi.Nodes {
		f.fake.NodeTags[n.ID] = map[string]string{ZoneTag: ZoneTagValue(fmt.Sprintf("zone-%c", 'a'+i))}
	}
	sv := f.server(t, f.svc)
	ctx := context.Background()

	vol, err := sv.Create(ctx, createReq(t, "vol_spread", 1, map[string]string{"volumeoptions": "client.ssl on"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.fake.Creates()[0].GlusterVolumeOptions; !slices.Equal(got, []string{"client.ssl on", OptionZoneChecking + " strict"}) {
		t.Errorf("spread options %q", got)
	}
	if vol.Zone != "" {
		t.Errorf("spread volume pinned to %q", vol.Zone)
	}

	// One node per zone: a local replica-3 volume fits nowhere.
	req := createReq(t, "vol_local3", 1, map[string]string{"placement": "local", "gidMin": "3000", "gidMax": "3000"})
	req.Topology = Topology{Preferred: []string{"zone-b"}}
	_, err = sv.Create(ctx, req)
	if !IsPlacement(err) || !strings.Contains(err.Error(), "zone zone-b has 1 storage node") || IsOutcomeUnknown(err) {
		t.Fatalf("local replica-3 in a zone of one node: %v", err)
	}
	if f.fake.Count("volume_create") != 1 {
		t.Errorf("heketi was asked for a volume that cannot be placed (%d creates)", f.fake.Count("volume_create"))
	}
	if _, taken := f.svc.GIDOwner(3000); taken {
		t.Error("the failed volume kept its GID")
	}

	req = createReq(t, "vol_local1", 1, map[string]string{"placement": "local", "volumetype": "none"})
	req.Topology = Topology{Preferred: []string{"zone-b"}}
	vol, err = sv.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.fake.Creates()[1].GlusterVolumeOptions; !slices.Equal(got, []string{OptionZoneChecking + " none", OptionDeviceTagMatch + " glusterkube.zone=zone:b"}) {
		t.Errorf("local options %q", got)
	}
	if vol.Zone != "zone-b" {
		t.Errorf("local volume in zone %q", vol.Zone)
	}
	// A new process finds it (by name) and reads its zone back.
	again, err := f.server(t, f.restart()).Create(ctx, req)
	if err != nil || !again.Reused || again.Zone != "zone-b" {
		t.Errorf("found again: %+v %v", again, err)
	}
}
