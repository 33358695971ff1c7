package csi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/volume/fakeheketi"
)

const testURL = "http://heketi.test:8080"

type ctrlFixture struct {
	fake   *fakeheketi.Heketi
	c      *Controller
	dialed []heketi.Config
}

func newCtrlFixture(t *testing.T) *ctrlFixture {
	t.Helper()
	f := &ctrlFixture{fake: fakeheketi.New()}
	c, err := NewController(ControllerConfig{
		Heketi: heketi.Config{URL: testURL, User: "admin", Key: "adminkey"},
		Dial: func(cfg heketi.Config) (volume.Heketi, error) {
			f.dialed = append(f.dialed, cfg)
			return f.fake, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

func mountCap(mode csipb.VolumeCapability_AccessMode_Mode) *csipb.VolumeCapability {
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCap() *csipb.VolumeCapability {
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func createReq(name string, gib int64, params map[string]string) *csipb.CreateVolumeRequest {
	return &csipb.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csipb.CapacityRange{RequiredBytes: gib * volume.GiB},
		VolumeCapabilities: []*csipb.VolumeCapability{mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)},
		Parameters:         params,
	}
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil && code != codes.OK || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v (%s), want %s with %q", st.Code(), st.Message(), code, msg)
	}
}

func TestControllerCreateVolumeErrors(t *testing.T) {
	timeout := &heketi.Error{Op: "volume_create", Err: context.DeadlineExceeded, Message: "context deadline exceeded"}
	tests := []struct {
		name  string
		setup func(f *ctrlFixture)
		req   func() *csipb.CreateVolumeRequest
		code  codes.Code
		msg   string
		// creates is how many heketi creates the call may make.
		creates int
	}{
		{"no name", nil, func() *csipb.CreateVolumeRequest { return createReq("", 1, nil) }, codes.InvalidArgument, "name is required", 0},
		{"no capabilities", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeCapabilities = nil
			return r
		}, codes.InvalidArgument, "volume_capabilities are required", 0},
		{"block", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeCapabilities = []*csipb.VolumeCapability{blockCap()}
			return r
		}, codes.InvalidArgument, "block volumes are not supported", 0},
		{"fs type", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeCapabilities[0].GetMount().FsType = "ext4"
			return r
		}, codes.InvalidArgument, `fs_type "ext4"`, 0},
		{"no access mode", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeCapabilities[0].AccessMode = nil
			return r
		}, codes.InvalidArgument, "no access mode", 0},
		// The provisioner's message, without the class name CSI calls lack.
		{"unknown parameter", nil, func() *csipb.CreateVolumeRequest { return createReq("v", 1, map[string]string{"replicas": "3"}) },
			codes.InvalidArgument, `StorageClass parameter replicas="3": unknown parameter; valid form: one of resturl`, 0},
		{"malformed parameter", nil, func() *csipb.CreateVolumeRequest {
			return createReq("v", 1, map[string]string{"volumetype": "replicate:x"})
		}, codes.InvalidArgument, `parameter volumetype="replicate:x"`, 0},
		{"in-tree volume source", nil, func() *csipb.CreateVolumeRequest {
			return createReq("v", 1, map[string]string{"volumesource": "glusterfs"})
		}, codes.InvalidArgument, "built-in provisioner", 0},
		{"required above limit", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 2, nil)
			r.CapacityRange.LimitBytes = volume.GiB
			return r
		}, codes.InvalidArgument, "more than limit_bytes", 0},
		{"limit below a GiB", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 0, nil)
			r.CapacityRange = &csipb.CapacityRange{RequiredBytes: 1 << 20, LimitBytes: 100 << 20}
			return r
		}, codes.OutOfRange, "whole GiB", 0},
		{"secrets without a key", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.Secrets = map[string]string{"user": "admin"}
			return r
		}, codes.InvalidArgument, `no "key" entry`, 0},
		{"class Secret but no CSI secrets", nil, func() *csipb.CreateVolumeRequest {
			return createReq("v", 1, map[string]string{"secretNamespace": "gk", "secretName": "heketi"})
		}, codes.InvalidArgument, "csi.storage.k8s.io/provisioner-secret-name: heketi", 0},
		{"no space", nil, func() *csipb.CreateVolumeRequest { return createReq("v", fakeheketi.DeviceGiB+1, nil) }, codes.ResourceExhausted, "No space", 1},
		{"heketi timed out", func(f *ctrlFixture) {
			f.fake.FailCreate = func(*api.VolumeCreateRequest) (bool, error) { return true, timeout }
		}, func() *csipb.CreateVolumeRequest { return createReq("v", 1, nil) }, codes.DeadlineExceeded, "outcome unknown", 1},
		{"earlier create still running", func(f *ctrlFixture) {
			// heketi refuses the name and hides the volume it is making.
			f.fake.FailCreate = func(req *api.VolumeCreateRequest) (bool, error) {
				return false, fakeheketi.Err("volume_create", http.StatusInternalServerError, "Volume name '"+req.Name+"' already in use")
			}
		}, func() *csipb.CreateVolumeRequest { return createReq("v", 1, nil) }, codes.Aborted, "still being created", 1},
		{"credentials refused", func(f *ctrlFixture) {
			f.fake.FailTopo = func() error {
				return fakeheketi.Err("cluster_list", http.StatusUnauthorized, "Administrator access required")
			}
		}, func() *csipb.CreateVolumeRequest { return createReq("v", 1, nil) }, codes.PermissionDenied, "admin user", 0},
		{"GID range full", func(f *ctrlFixture) {
			_, err := f.c.CreateVolume(context.Background(), createReq("first", 1, map[string]string{"gidMin": "3000", "gidMax": "3000"}))
			if err != nil {
				panic(err)
			}
		}, func() *csipb.CreateVolumeRequest {
			return createReq("second", 1, map[string]string{"gidMin": "3000", "gidMax": "3000"})
		}, codes.ResourceExhausted, "3000..3000", 1},
		{"snapshot source", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: "s"}}}
			return r
		}, codes.InvalidArgument, "no snapshots", 0},
		{"source not ours", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: "some-vol"}}}
			return r
		}, codes.NotFound, "source volume", 0},
		{"source missing", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: "ffffffffffffffffffffffffffffffff"}}}
			return r
		}, codes.NotFound, "source volume", 0},
		{"source on another server", nil, func() *csipb.CreateVolumeRequest {
			r := createReq("v", 1, nil)
			r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: "ffffffffffffffffffffffffffffffff@http://other:1"}}}
			return r
		}, codes.InvalidArgument, "one server only", 0},
		{"the same name in use", func(f *ctrlFixture) {
			if _, err := f.c.locks.acquireAll("name/vol_v"); err != nil {
				panic(err)
			}
		}, func() *csipb.CreateVolumeRequest { return createReq("v", 1, nil) }, codes.Aborted, "in progress", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCtrlFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			before := f.fake.Count("volume_create")
			vols := len(f.fake.VolumeNames())
			_, err := f.c.CreateVolume(context.Background(), tt.req())
			wantStatus(t, err, tt.code, tt.msg)
			if n := f.fake.Count("volume_create") - before; n > tt.creates {
				t.Errorf("%d heketi creates, want at most %d", n, tt.creates)
			}
			if tt.code != codes.DeadlineExceeded && len(f.fake.VolumeNames()) != vols {
				t.Errorf("%d heketi volumes, want %d: a failed call left one", len(f.fake.VolumeNames()), vols)
			}
			if strings.Contains(status.Convert(err).Message(), "--") {
				t.Errorf("message names a flag: %s", status.Convert(err).Message())
			}
		})
	}
}

func TestControllerCreateVolumeIdempotent(t *testing.T) {
	f := newCtrlFixture(t)
	ctx := context.Background()
	params := map[string]string{"gidMin": "40000", "gidMax": "40010", "csi.storage.k8s.io/pv/name": "pvc-1", "csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "ns1"}
	req := createReq("pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 1, params)
	req.CapacityRange.RequiredBytes = 1500 << 20
	first, err := f.c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	v := first.GetVolume()
	if v.GetCapacityBytes() != 2*volume.GiB || v.GetVolumeContext()[ContextServers] != "10.0.0.1,10.0.0.2,10.0.0.3" ||
		v.GetVolumeContext()[ContextVolume] != "vol_pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
		t.Errorf("volume %+v", v)
	}
	if id, err := volume.ParseID(v.GetVolumeId()); err != nil || id.URL != "" {
		t.Errorf("volume id %q: %+v %v, want a bare heketi id", v.GetVolumeId(), id, err)
	}
	again, err := f.c.CreateVolume(ctx, req)
	if err != nil || again.GetVolume().GetVolumeId() != v.GetVolumeId() || f.fake.Count("volume_create") != 1 {
		t.Fatalf("same name, same size: %v %v (%d creates)", again, err, f.fake.Count("volume_create"))
	}
	bigger := createReq(req.Name, 5, params)
	_, err = f.c.CreateVolume(ctx, bigger)
	wantStatus(t, err, codes.AlreadyExists, "exists with 2 GiB")
	other := createReq(req.Name, 1, map[string]string{"volumetype": "replicate:2"})
	_, err = f.c.CreateVolume(ctx, other)
	wantStatus(t, err, codes.AlreadyExists, "another volume type")
	if f.fake.Count("volume_create") != 1 {
		t.Errorf("%d creates", f.fake.Count("volume_create"))
	}
	// A class with volumenameprefix names the claim's volume as the
	// built-in provisioner does (from the extra create metadata).
	params["volumenameprefix"] = "dept"
	p, err := f.c.CreateVolume(ctx, createReq("pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 1, params))
	if err != nil || p.GetVolume().GetVolumeContext()[ContextVolume] != "dept_ns1_data_0f1e2d3c" {
		t.Fatalf("prefixed: %v %v", p, err)
	}
}

func TestControllerCreateVolumeCredentials(t *testing.T) {
	tests := []struct {
		name     string
		params   map[string]string
		secrets  map[string]string
		wantURL  string
		wantUser string
		wantKey  string
	}{
		{"default server", nil, nil, testURL, "admin", "adminkey"},
		{"secrets", nil, map[string]string{"key": "k1"}, testURL, "admin", "k1"},
		{"secrets with user", map[string]string{"resturl": "http://other:1", "restuser": "ignored"}, map[string]string{"key": "k2", "user": "ops"}, "http://other:1", "ops", "k2"},
		{"class user, secret key", map[string]string{"resturl": "http://other:1", "restuser": "ops"}, map[string]string{"key": "k3"}, "http://other:1", "ops", "k3"},
		{"inline class key", map[string]string{"resturl": "http://other:1", "restuserkey": "k4"}, nil, "http://other:1", "admin", "k4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCtrlFixture(t)
			r := createReq("v", 1, tt.params)
			r.Secrets = tt.secrets
			resp, err := f.c.CreateVolume(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			d := f.dialed[len(f.dialed)-1]
			if d.URL != tt.wantURL || d.User != tt.wantUser || d.Key != tt.wantKey {
				t.Errorf("dialed %s as %q key %q", d.URL, d.User, d.Key)
			}
			id, _ := volume.ParseID(resp.GetVolume().GetVolumeId())
			if wantIDURL := strings.TrimPrefix(tt.wantURL, testURL); id.URL != wantIDURL {
				t.Errorf("volume id %q carries URL %q, want %q", resp.GetVolume().GetVolumeId(), id.URL, wantIDURL)
			}
		})
	}
}

func TestControllerCloneVolume(t *testing.T) {
	f := newCtrlFixture(t)
	ctx := context.Background()
	src, err := f.c.CreateVolume(ctx, createReq("src", 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	clone := func(gib int64, limit int64) (*csipb.CreateVolumeResponse, error) {
		r := createReq("copy", gib, nil)
		r.CapacityRange.LimitBytes = limit
		r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: src.GetVolume().GetVolumeId()}}}
		return f.c.CreateVolume(ctx, r)
	}
	_, err = clone(1, volume.GiB)
	wantStatus(t, err, codes.OutOfRange, "at least as large as its source")
	_, err = clone(3, 0)
	wantStatus(t, err, codes.InvalidArgument, "cannot grow a cloned volume")
	c1, err := clone(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c1.GetVolume().GetCapacityBytes() != 2*volume.GiB || c1.GetVolume().GetContentSource().GetVolume().GetVolumeId() != src.GetVolume().GetVolumeId() {
		t.Errorf("clone %+v", c1.GetVolume())
	}
	c2, err := clone(1, 0)
	if err != nil || c2.GetVolume().GetVolumeId() != c1.GetVolume().GetVolumeId() || f.fake.Count("volume_clone") != 1 {
		t.Fatalf("again: %v %v (%d clones)", c2, err, f.fake.Count("volume_clone"))
	}
}

func TestControllerDeleteVolume(t *testing.T) {
	tests := []struct {
		name  string
		id    func(f *ctrlFixture, id string) string
		setup func(f *ctrlFixture, id string)
		code  codes.Code
		msg   string
		left  int
	}{
		{"deletes", nil, nil, codes.OK, "", 0},
		{"twice", nil, func(f *ctrlFixture, id string) {
			if _, err := f.c.DeleteVolume(context.Background(), &csipb.DeleteVolumeRequest{VolumeId: id}); err != nil {
				panic(err)
			}
		}, codes.OK, "", 0},
		{"no id", func(*ctrlFixture, string) string { return "" }, nil, codes.InvalidArgument, "volume_id is required", 1},
		{"an id not ours", func(*ctrlFixture, string) string { return "reallyfakevolumeid" }, nil, codes.OK, "", 1},
		{"heketi fails", nil, func(f *ctrlFixture, _ string) {
			f.fake.FailDelete = func(string) error { return fakeheketi.Err("volume_delete", http.StatusInternalServerError, "boom") }
		}, codes.Internal, "boom", 1},
		{"hidden by a running delete", func(*ctrlFixture, string) string { return "ffffffffffffffffffffffffffffffff" }, func(f *ctrlFixture, _ string) {
			f.fake.Pending = map[string]*api.PendingOperationDetails{"op": {
				PendingOperationInfo: api.PendingOperationInfo{Id: "op", TypeName: "delete-volume"},
				Changes:              []api.PendingChangeInfo{{Id: "ffffffffffffffffffffffffffffffff"}},
			}}
		}, codes.Aborted, "running delete-volume", 1},
		{"in use", nil, func(f *ctrlFixture, id string) {
			if _, err := f.c.locks.acquireAll("id/" + id); err != nil {
				panic(err)
			}
		}, codes.Aborted, "in progress", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCtrlFixture(t)
			resp, err := f.c.CreateVolume(context.Background(), createReq("v", 1, nil))
			if err != nil {
				t.Fatal(err)
			}
			id := resp.GetVolume().GetVolumeId()
			if tt.setup != nil {
				tt.setup(f, id)
			}
			if tt.id != nil {
				id = tt.id(f, id)
			}
			_, err = f.c.DeleteVolume(context.Background(), &csipb.DeleteVolumeRequest{VolumeId: id})
			wantStatus(t, err, tt.code, tt.msg)
			if n := len(f.fake.VolumeNames()); n != tt.left {
				t.Errorf("%d volumes left, want %d", n, tt.left)
			}
		})
	}
}

func TestControllerExpandVolume(t *testing.T) {
	tests := []struct {
		name    string
		req     func(id string) *csipb.ControllerExpandVolumeRequest
		setup   func(f *ctrlFixture, id string)
		code    codes.Code
		msg     string
		size    int
		expands int
	}{
		{"grows", nil, nil, codes.OK, "", 3, 1},
		{"twice", nil, func(f *ctrlFixture, id string) {
			if _, err := f.c.ControllerExpandVolume(context.Background(), &csipb.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csipb.CapacityRange{RequiredBytes: 3 * volume.GiB}}); err != nil {
				panic(err)
			}
		}, codes.OK, "", 3, 1},
		{"no id", func(string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{CapacityRange: &csipb.CapacityRange{RequiredBytes: volume.GiB}}
		}, nil, codes.InvalidArgument, "volume_id is required", 1, 0},
		{"no capacity", func(id string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{VolumeId: id}
		}, nil, codes.InvalidArgument, "capacity_range is required", 1, 0},
		{"unknown volume", func(string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{VolumeId: "ffffffffffffffffffffffffffffffff", CapacityRange: &csipb.CapacityRange{RequiredBytes: 3 * volume.GiB}}
		}, nil, codes.NotFound, "has no volume", 1, 0},
		{"an id not ours", func(string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{VolumeId: "pvc-1", CapacityRange: &csipb.CapacityRange{RequiredBytes: 3 * volume.GiB}}
		}, nil, codes.NotFound, "not a glusterkube volume id", 1, 0},
		{"earlier expansion running", nil, func(f *ctrlFixture, id string) {
			f.fake.Pending = map[string]*api.PendingOperationDetails{"op": {
				PendingOperationInfo: api.PendingOperationInfo{Id: "op", TypeName: "expand-volume"},
				Changes:              []api.PendingChangeInfo{{Id: id}},
			}}
		}, codes.Aborted, "still running", 1, 0},
		{"no space", func(id string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csipb.CapacityRange{RequiredBytes: (fakeheketi.DeviceGiB + 1) * volume.GiB}}
		}, nil, codes.ResourceExhausted, "No space", 1, 1},
		{"block", func(id string) *csipb.ControllerExpandVolumeRequest {
			return &csipb.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csipb.CapacityRange{RequiredBytes: 3 * volume.GiB}, VolumeCapability: blockCap()}
		}, nil, codes.InvalidArgument, "block", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCtrlFixture(t)
			resp, err := f.c.CreateVolume(context.Background(), createReq("v", 1, nil))
			if err != nil {
				t.Fatal(err)
			}
			id := resp.GetVolume().GetVolumeId()
			if tt.setup != nil {
				tt.setup(f, id)
			}
			req := &csipb.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csipb.CapacityRange{RequiredBytes: 2500 << 20}}
			if tt.req != nil {
				req = tt.req(id)
			}
			out, err := f.c.ControllerExpandVolume(context.Background(), req)
			wantStatus(t, err, tt.code, tt.msg)
			if err == nil && (out.GetCapacityBytes() != int64(tt.size)*volume.GiB || out.GetNodeExpansionRequired()) {
				t.Errorf("response %+v", out)
			}
			if s := f.fake.Size(id); s != tt.size {
				t.Errorf("heketi size %d, want %d", s, tt.size)
			}
			if n := f.fake.Count("volume_expand"); n != tt.expands {
				t.Errorf("%d expands, want %d", n, tt.expands)
			}
		})
	}
}

func TestControllerValidateVolumeCapabilities(t *testing.T) {
	f := newCtrlFixture(t)
	resp, err := f.c.CreateVolume(context.Background(), createReq("v", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetVolume().GetVolumeId()
	all := []*csipb.VolumeCapability{}
	for m := range csipb.VolumeCapability_AccessMode_Mode_name {
		if m != 0 {
			all = append(all, mountCap(csipb.VolumeCapability_AccessMode_Mode(m)))
		}
	}
	tests := []struct {
		name      string
		req       *csipb.ValidateVolumeCapabilitiesRequest
		code      codes.Code
		confirmed bool
		msg       string
	}{
		{"every access mode", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id, VolumeCapabilities: all, VolumeContext: resp.GetVolume().GetVolumeContext()}, codes.OK, true, ""},
		{"block", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id, VolumeCapabilities: []*csipb.VolumeCapability{blockCap()}}, codes.OK, false, "block volumes"},
		{"other volume in context", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id, VolumeCapabilities: all, VolumeContext: map[string]string{ContextVolume: "x"}}, codes.OK, false, `names GlusterFS volume "x"`},
		{"bad parameters", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id, VolumeCapabilities: all, Parameters: map[string]string{"bogus": "1"}}, codes.OK, false, "unknown parameter"},
		{"no id", &csipb.ValidateVolumeCapabilitiesRequest{VolumeCapabilities: all}, codes.InvalidArgument, false, "volume_id"},
		{"no capabilities", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id}, codes.InvalidArgument, false, "volume_capabilities"},
		{"unknown volume", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: "ffffffffffffffffffffffffffffffff", VolumeCapabilities: all}, codes.NotFound, false, "has no volume"},
		{"an id not ours", &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: "some-vol-id", VolumeCapabilities: all}, codes.NotFound, false, "not a glusterkube volume id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.c.ValidateVolumeCapabilities(context.Background(), tt.req)
			if tt.code != codes.OK {
				wantStatus(t, err, tt.code, tt.msg)
				return
			}
			if err != nil || (out.GetConfirmed() != nil) != tt.confirmed || !strings.Contains(out.GetMessage(), tt.msg) {
				t.Fatalf("%+v %v", out, err)
			}
		})
	}
}

func TestControllerListVolumes(t *testing.T) {
	f := newCtrlFixture(t)
	ctx := context.Background()
	want := map[string]bool{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		r, err := f.c.CreateVolume(ctx, createReq(n, 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		want[r.GetVolume().GetVolumeId()] = true
	}
	got := map[string]bool{}
	token, pages := "", 0
	for {
		resp, err := f.c.ListVolumes(ctx, &csipb.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range resp.GetEntries() {
			if got[e.GetVolume().GetVolumeId()] || e.GetVolume().GetCapacityBytes() != volume.GiB {
				t.Errorf("entry %+v repeated or wrong", e.GetVolume())
			}
			got[e.GetVolume().GetVolumeId()] = true
		}
		if token = resp.GetNextToken(); token == "" {
			break
		}
	}
	if pages != 3 || len(got) != len(want) {
		t.Errorf("%d pages, %d volumes; want 3 pages, %d volumes", pages, len(got), len(want))
	}
	_, err := f.c.ListVolumes(ctx, &csipb.ListVolumesRequest{StartingToken: "invalid-token"})
	wantStatus(t, err, codes.Aborted, "not one this driver gave")
	_, err = f.c.ListVolumes(ctx, &csipb.ListVolumesRequest{MaxEntries: -1})
	wantStatus(t, err, codes.InvalidArgument, "negative")
}

func TestControllerGetCapacity(t *testing.T) {
	f := newCtrlFixture(t)
	ctx := context.Background()
	resp, err := f.c.GetCapacity(ctx, &csipb.GetCapacityRequest{})
	if err != nil || resp.GetAvailableCapacity() != fakeheketi.DeviceGiB*volume.GiB {
		t.Fatalf("%v %v", resp, err)
	}
	resp, err = f.c.GetCapacity(ctx, &csipb.GetCapacityRequest{Parameters: map[string]string{"volumetype": "none"}})
	if err != nil || resp.GetAvailableCapacity() != 3*fakeheketi.DeviceGiB*volume.GiB {
		t.Fatalf("volumetype none: %v %v", resp, err)
	}
	resp, err = f.c.GetCapacity(ctx, &csipb.GetCapacityRequest{VolumeCapabilities: []*csipb.VolumeCapability{blockCap()}})
	if err != nil || resp.GetAvailableCapacity() != 0 {
		t.Fatalf("block: %v %v", resp, err)
	}
	_, err = f.c.GetCapacity(ctx, &csipb.GetCapacityRequest{Parameters: map[string]string{"gidMin": "1"}})
	wantStatus(t, err, codes.InvalidArgument, "parameter gidMin")
}

func TestControllerProbe(t *testing.T) {
	f := newCtrlFixture(t)
	if err := f.c.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.fake.FailTopo = func() error { return fakeheketi.Err("cluster_list", http.StatusServiceUnavailable, "down") }
	if err := f.c.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("probe with heketi down: %v", err)
	}
	if _, err := NewController(ControllerConfig{Heketi: heketi.Config{URL: "heketi:8080"}}); err == nil || !strings.Contains(err.Error(), "default heketi server") {
		t.Fatalf("bad default URL: %v", err)
	}
	c, err := NewController(ControllerConfig{})
	if err != nil || c.Probe(context.Background()) != nil {
		t.Fatalf("no default server: %v", err)
	}
}

func TestControllerCapabilities(t *testing.T) {
	f := newCtrlFixture(t)
	resp, err := f.c.ControllerGetCapabilities(context.Background(), &csipb.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csipb.ControllerServiceCapability_RPC_Type]bool{}
	for _, c := range resp.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csipb.ControllerServiceCapability_RPC_Type{
		csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csipb.ControllerServiceCapability_RPC_LIST_VOLUMES, csipb.ControllerServiceCapability_RPC_GET_CAPACITY,
		csipb.ControllerServiceCapability_RPC_CLONE_VOLUME, csipb.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		if !got[want] {
			t.Errorf("missing %s", want)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d capabilities: %v", len(got), got)
	}
}
