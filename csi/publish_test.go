package csi

import (
	"slices"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
)

func request(mut func(r *csipb.NodePublishVolumeRequest)) *csipb.NodePublishVolumeRequest {
	r := &csipb.NodePublishVolumeRequest{
		VolumeId:   "vid",
		TargetPath: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv/mount",
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		},
		VolumeContext: map[string]string{ContextServers: "10.0.0.1,10.0.0.2", ContextVolume: "vol_1"},
	}
	if mut != nil {
		mut(r)
	}
	return r
}

func TestParsePublish(t *testing.T) {
	tests := []struct {
		name        string
		req         *csipb.NodePublishVolumeRequest
		wantErr     string
		wantServers []string
		wantRO      bool
		wantFlags   []string
		wantPod     *podRef
	}{
		{name: "ok", req: request(nil), wantServers: []string{"10.0.0.1", "10.0.0.2"}},
		{name: "servers trimmed, repeats and empties dropped, primary first", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeContext[ContextServers] = " a.example ,b.example,,A.example, a.example,c"
		}), wantServers: []string{"a.example", "b.example", "c"}},
		{name: "no volume id", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeId = "" }), wantErr: "volume_id is missing"},
		{name: "no target", req: request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = "" }), wantErr: "target_path is missing"},
		{name: "relative target", req: request(func(r *csipb.NodePublishVolumeRequest) { r.TargetPath = "a/b" }), wantErr: "not an absolute path"},
		{name: "no capability", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeCapability = nil }), wantErr: "volume_capability is missing"},
		{name: "block", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}}
		}), wantErr: "block access is not supported"},
		{name: "other fs type", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().FsType = "ext4"
		}), wantErr: `fs_type "ext4"`},
		{name: "no access mode", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeCapability.AccessMode = nil }), wantErr: "access_mode is missing"},
		{name: "no servers", req: request(func(r *csipb.NodePublishVolumeRequest) { delete(r.VolumeContext, ContextServers) }), wantErr: `"servers" is missing`},
		{name: "only commas", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeContext[ContextServers] = " , ," }), wantErr: `"servers" is missing`},
		{name: "injected option", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeContext[ContextServers] = "a -o x" }), wantErr: "not a host name"},
		{name: "ipv6", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeContext[ContextServers] = "fd00::1" }), wantErr: "not a host name"},
		{name: "no volume", req: request(func(r *csipb.NodePublishVolumeRequest) { delete(r.VolumeContext, ContextVolume) }), wantErr: `"volume" is missing`},
		{name: "bad volume", req: request(func(r *csipb.NodePublishVolumeRequest) { r.VolumeContext[ContextVolume] = "a;b" }), wantErr: "not a GlusterFS volume name"},
		{name: "read-only flag", req: request(func(r *csipb.NodePublishVolumeRequest) { r.Readonly = true }), wantServers: []string{"10.0.0.1", "10.0.0.2"}, wantRO: true},
		{name: "read-only access mode", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessMode.Mode = csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
		}), wantServers: []string{"10.0.0.1", "10.0.0.2"}, wantRO: true},
		{name: "flags split at commas", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().MountFlags = []string{"log-level=WARNING,acl", " noatime "}
		}), wantServers: []string{"10.0.0.1", "10.0.0.2"}, wantFlags: []string{"log-level=WARNING", "acl", "noatime"}},
		{name: "flag with a blank", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().MountFlags = []string{"log-file=/a b"}
		}), wantErr: "mount flag"},
		{name: "pod info", req: request(func(r *csipb.NodePublishVolumeRequest) {
			r.VolumeContext[contextPodName], r.VolumeContext[contextPodNamespace], r.VolumeContext[contextPodUID] = "web-0", "shop", "uid-1"
		}), wantServers: []string{"10.0.0.1", "10.0.0.2"}, wantPod: &podRef{Namespace: "shop", Name: "web-0", UID: "uid-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePublish(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Servers, tc.wantServers) || p.ReadOnly != tc.wantRO || !slices.Equal(p.Flags, tc.wantFlags) {
				t.Errorf("servers %v ro %v flags %v; want %v %v %v", p.Servers, p.ReadOnly, p.Flags, tc.wantServers, tc.wantRO, tc.wantFlags)
			}
			if (p.Pod == nil) != (tc.wantPod == nil) || (p.Pod != nil && *p.Pod != *tc.wantPod) {
				t.Errorf("pod %+v, want %+v", p.Pod, tc.wantPod)
			}
		})
	}
}

func TestMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		servers []string
		flags   []string
		ro      bool
		logDir  string
		want    []string
	}{
		{name: "defaults", servers: []string{"a", "b", "c"}, logDir: "/log",
			want: []string{"auto_unmount", "log-level=ERROR", "log-file=/log/v.log", "backup-volfile-servers=b:c"}},
		{name: "one server: no backup list", servers: []string{"a"},
			want: []string{"auto_unmount", "log-level=ERROR"}},
		{name: "flags override the defaults key by key", servers: []string{"a", "b"}, logDir: "/log",
			flags: []string{"log-level=DEBUG", "log-file=/elsewhere.log", "acl"},
			want:  []string{"auto_unmount", "backup-volfile-servers=b", "log-level=DEBUG", "log-file=/elsewhere.log", "acl"}},
		{name: "the class names its own backups", servers: []string{"a", "b"}, flags: []string{"backupvolfile-server=z"},
			want: []string{"auto_unmount", "log-level=ERROR", "backupvolfile-server=z"}},
		{name: "read-only", servers: []string{"a"}, ro: true, flags: []string{"rw"},
			want: []string{"auto_unmount", "log-level=ERROR", "ro"}},
		{name: "ro flag kept once", servers: []string{"a"}, ro: true, flags: []string{"ro"},
			want: []string{"auto_unmount", "log-level=ERROR", "ro"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mountOptions(&publish{Servers: tc.servers, Volume: "v", Flags: tc.flags, ReadOnly: tc.ro}, tc.logDir)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			for _, o := range got {
				if strings.HasPrefix(o, "backup-volfile-servers=") && slices.Contains(strings.Split(strings.TrimPrefix(o, "backup-volfile-servers="), ":"), tc.servers[0]) {
					t.Errorf("the primary %s is among the backups: %s", tc.servers[0], o)
				}
			}
		})
	}
}
