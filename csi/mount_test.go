package csi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

const volID = "0123456789abcdef0123456789abcdef"

// TestRealMountPublish publishes a replica-3 volume through the node
// plugin on a real glusterd: the FUSE client gets the backup volfile
// servers (never the primary twice), auto_unmount and a log file of the
// volume; a file written through the mount is on every brick; publishing
// again is a no-op; another volume on the same target is refused; stats
// report the volume's size; unpublish leaves no mount, no process and no
// folder, and is itself idempotent.
func TestRealMountPublish(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bricks, err := g.CreateHeketiVolume(ctx, "vol_"+volID)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, g)
	n.startPlugin()

	target := n.target("pod-a", "pv-a")
	// The primary is repeated in the list: it must reach glusterfs once.
	req := publishRequest(volID, "vol_"+volID, "127.0.0.1, 127.0.0.2,127.0.0.1,127.0.0.3", target)
	n.publish(t, ctx, req)

	clients := clientProcs(target)
	if len(clients) == 0 {
		t.Fatalf("no FUSE client for %s", target)
	}
	args := cmdline(clients[0])
	var servers []string
	for _, a := range args {
		if s, ok := strings.CutPrefix(a, "--volfile-server="); ok {
			servers = append(servers, s)
		}
	}
	if want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}; !slices.Equal(servers, want) {
		t.Errorf("FUSE client volfile servers %v, want %v (args %v)", servers, want, args)
	}
	for _, want := range []string{"--log-level=ERROR", "--log-file=" + filepath.Join(n.logDir, "vol_"+volID+".log"), "--fuse-mountopts=auto_unmount"} {
		if !slices.Contains(args, want) {
			t.Errorf("FUSE client args %v lack %s", args, want)
		}
	}

	want := "written through the CSI mount\n"
	if err := os.WriteFile(filepath.Join(target, "hello.txt"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range bricks {
		got, err := os.ReadFile(filepath.Join(b, "hello.txt"))
		if err != nil || string(got) != want {
			t.Errorf("brick %s: %q %v, want %q", b, got, err, want)
		}
	}

	// Again: a success that mounts nothing more.
	n.publish(t, ctx, req)
	if m := mountsUnder(target); len(m) != 1 {
		t.Errorf("after a second publish %d mounts at %s, want 1", len(m), target)
	}
	// The same target with another volume is refused.
	if _, err := g.CreateHeketiVolume(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	_, err = n.Node.NodePublishVolume(ctx, publishRequest(volID, "other", "127.0.0.1", target))
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("publishing another volume on a used target: %v, want AlreadyExists", err)
	}

	// Stats: the volume's size is what GlusterFS reports for it: its
	// bricks' file system, which its three directory bricks share, so each
	// brick reports a third of it (glusterd's shared-brick-count).
	stats, err := n.Node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: volID, VolumePath: target})
	if err != nil {
		t.Fatal(err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(bricks[0], &fs); err != nil {
		t.Fatal(err)
	}
	usage := map[csipb.VolumeUsage_Unit]*csipb.VolumeUsage{}
	for _, u := range stats.GetUsage() {
		usage[u.GetUnit()] = u
	}
	bytes, inodes := usage[csipb.VolumeUsage_BYTES], usage[csipb.VolumeUsage_INODES]
	if bytes == nil || inodes == nil {
		t.Fatalf("stats %v: want bytes and inodes", stats)
	}
	const shared = 3
	if brickBytes := int64(fs.Blocks) * fs.Bsize / shared; !near(bytes.GetTotal(), brickBytes) || bytes.GetUsed() <= 0 || bytes.GetAvailable() <= 0 {
		t.Errorf("bytes %v, want a total of %d (the bricks' file system)", bytes, brickBytes)
	}
	if !near(inodes.GetTotal(), int64(fs.Files)/shared) || inodes.GetUsed() <= 0 {
		t.Errorf("inodes %v, want a total of %d", inodes, int64(fs.Files)/shared)
	}
	health, err := n.Node.NodeGetVolumeHealth(ctx, &csipb.NodeGetVolumeHealthRequest{VolumeId: volID, VolumePublishPath: target})
	if err != nil || len(health.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health of a good mount: %v %v, want no condition", health, err)
	}

	n.unpublish(t, ctx, volID, target)
	if m := mountsUnder(target); len(m) != 0 {
		t.Errorf("mounts left after unpublish: %v", m)
	}
	waitNoClient(t, target)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target after unpublish: %v, want it removed", err)
	}
	n.unpublish(t, ctx, volID, target) // nothing there: still a success
	if _, err := n.Node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: volID, VolumePath: target}); status.Code(err) != codes.NotFound {
		t.Errorf("stats of an unpublished path: %v, want NotFound", err)
	}
}

// near reports whether a is within 2% of b (free space moves a little as
// other tests write to the same file system).
func near(a, b int64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= b/50
}

// TestRealMountReadOnly: a read-only publish mounts read-only; writes fail
// with EROFS.
func TestRealMountReadOnly(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := g.CreateHeketiVolume(ctx, "ro"); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, g)
	n.startPlugin()
	target := n.target("pod-ro", "pv-ro")
	req := publishRequest("ro-id", "ro", "127.0.0.1", target)
	req.Readonly = true
	n.publish(t, ctx, req)
	err := os.WriteFile(filepath.Join(target, "x"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a read-only publish: %v, want EROFS", err)
	}
	// The same target asked read-write is another publish.
	req.Readonly = false
	if _, err := n.Node.NodePublishVolume(ctx, req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("read-write publish over a read-only one: %v, want AlreadyExists", err)
	}
	n.unpublish(t, ctx, "ro-id", target)
	waitNoClient(t, target)
}

// TestRealMountBadInput: bad requests get clear errors and leave nothing
// behind — no mount, no process, no folder.
func TestRealMountBadInput(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := newNode(t, g)
	n.startPlugin()

	file := filepath.Join(n.kubelet, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      *csipb.NodePublishVolumeRequest
		wantCode codes.Code
		wantMsg  string
	}{
		{"unknown volume", publishRequest("id-1", "nosuchvolume", "127.0.0.1", n.target("p1", "v1")), codes.NotFound, "do not know volume nosuchvolume"},
		{"no servers", publishRequest("id-2", "x", "", n.target("p2", "v2")), codes.InvalidArgument, `"servers" is missing`},
		{"no volume", publishRequest("id-3", "", "127.0.0.1", n.target("p3", "v3")), codes.InvalidArgument, `"volume" is missing`},
		{"bad server", publishRequest("id-4", "x", "127.0.0.1 -o evil", n.target("p4", "v4")), codes.InvalidArgument, "not a host name"},
		{"bad mount flag", publishRequest("id-5", "x", "127.0.0.1", n.target("p5", "v5"), "log-file=/x y"), codes.InvalidArgument, "mount flag"},
		{"unknown mount flag", publishRequest("id-6", "x", "127.0.0.1", n.target("p6", "v6"), "frobnicate"), codes.InvalidArgument, "Invalid option frobnicate"},
		{"target is a file", publishRequest("id-7", "x", "127.0.0.1", file), codes.InvalidArgument, "is a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Dir(tc.req.TargetPath), 0o750); err != nil {
				t.Fatal(err)
			}
			_, err := n.Node.NodePublishVolume(ctx, tc.req)
			if status.Code(err) != tc.wantCode || !strings.Contains(status.Convert(err).Message(), tc.wantMsg) {
				t.Fatalf("got %v, want %v with %q", err, tc.wantCode, tc.wantMsg)
			}
			t.Logf("%v", err)
			if m := mountsUnder(n.dir); len(m) != 0 {
				t.Errorf("mounts left: %v", m)
			}
			waitNoClient(t, tc.req.TargetPath)
			if tc.req.TargetPath != file {
				if _, err := os.Stat(tc.req.TargetPath); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("target folder left: %v", err)
				}
			}
		})
	}
}

// TestRealMountHungServer: a volfile server that accepts and never answers
// hangs the mount. The plugin ends it at its time-out — the mount's
// processes killed, nothing left mounted — answers DeadlineExceeded, and
// the target is free again: the next publish (to a server that answers)
// mounts.
func TestRealMountHungServer(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := g.CreateHeketiVolume(ctx, "hung"); err != nil {
		t.Fatal(err)
	}
	ln, err := g.ListenInNetNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept, read, never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { b := make([]byte, 4096); _, _ = c.Read(b); <-ctx.Done(); c.Close() }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	n := newNode(t, g)
	n.startPlugin("--mount-timeout=3s")
	target := n.target("pod-hung", "pv-hung")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = n.Node.NodePublishVolume(ctx, publishRequest("hung-id", "hung", "127.0.0.1", target, "server-port="+strconv.Itoa(port)))
	took := time.Since(start)
	t.Logf("hung publish: %v after %v", err, took.Round(time.Millisecond))
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "processes were killed") {
		t.Fatalf("publish to a hung server: %v, want DeadlineExceeded", err)
	}
	if took > 15*time.Second {
		t.Errorf("the hung publish took %v, want about the 3s time-out", took)
	}
	waitNoClient(t, target)
	if m := mountsUnder(target); len(m) != 0 {
		t.Errorf("mounts left by the hung mount: %v", m)
	}
	n.publish(t, ctx, publishRequest("hung-id", "hung", "127.0.0.1", target))
	n.unpublish(t, ctx, "hung-id", target)
	waitNoClient(t, target)
}
