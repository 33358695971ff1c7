package testenv_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestGlusterdMount starts a glusterd, creates and mounts a replica-3
// volume, writes through the mount, finds the file on every brick, checks
// everything listens on 127.0.0.1 only, and that Close leaves no process
// and no mount behind.
func TestGlusterdMount(t *testing.T) {
	start := time.Now()
	g := testenv.NewGlusterd(t)
	t.Logf("glusterd ready in %v", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start = time.Now()
	bricks, err := g.CreateVolume(ctx, "gk", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replica-3 volume created and started in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	mnt, err := g.Mount(ctx, "gk")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mounted in %v", time.Since(start).Round(time.Millisecond))

	want := "hello through FUSE\n"
	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range bricks {
		got, err := os.ReadFile(filepath.Join(b, "hello.txt"))
		if err != nil {
			t.Fatalf("brick %s: %v", b, err)
		}
		if string(got) != want {
			t.Fatalf("brick %s has %q, want %q", b, got, want)
		}
	}
	if out, err := g.Gluster(ctx, "volume", "info", "gk"); err != nil || !strings.Contains(out, "Number of Bricks: 1 x 3 = 3") {
		t.Fatalf("volume info: %v\n%s", err, out)
	}

	// glusterd, three bricks and the self-heal daemon run in glusterd's
	// network namespace; their listening sockets are in its tables. They
	// listen on loopback or the wildcard address of a namespace whose only
	// interface is the loopback one.
	seen := 0
	for _, pid := range g.Pids() {
		for _, addr := range listening(t, pid) {
			seen++
			if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" && host != "0.0.0.0" {
				t.Errorf("pid %d listens on %s, want loopback only", pid, addr)
			}
		}
	}
	t.Logf("%d listening sockets, all on loopback or glusterd's own namespace", seen)
	if seen < 4 { // glusterd and three bricks
		t.Fatalf("found only %d listening sockets of glusterd and its bricks; the check is not seeing them", seen)
	}
	if ifs := interfaces(t, g.Pids()[0]); len(ifs) != 1 || ifs[0] != "lo" {
		t.Errorf("glusterd's network namespace has interfaces %v, want lo only", ifs)
	}
	// The other loopback addresses answer too (backup volfile servers).
	out, err := exec.Command("nsenter", "--net="+g.NetNS(), "--", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.3/24007 && echo open").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "open") {
		t.Errorf("glusterd does not answer on 127.0.0.3:24007: %v %s", err, out)
	}
	// The sockets glusterd puts in /var/run/gluster whatever its options
	// landed in the temp dir.
	if socks, _ := filepath.Glob(filepath.Join(g.Dir, "sys", "run", "*.socket")); len(socks) < 3 {
		t.Errorf("brick sockets in %s: %v, want them there, not in /var/run/gluster", filepath.Join(g.Dir, "sys", "run"), socks)
	}

	dir := g.Dir
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if pids := g.Pids(); len(pids) > 0 {
		t.Errorf("processes of glusterd left after Close: %v", pids)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mounts under %s left after Close:\n%s", dir, mounts)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Close: %v", dir, err)
	}
}

// interfaces returns the network interfaces of a process's namespace.
func interfaces(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

// listening returns the local addresses of the listening TCP sockets a
// process holds, read from its own network namespace's tables.
func listening(t *testing.T, pid int) []string {
	t.Helper()
	listeners := map[string]string{} // socket inode -> local address
	for _, f := range []string{"tcp", "tcp6"} {
		file, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return nil // gone
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 10 && fields[3] == "0A" { // 0A = LISTEN
				listeners[fields[9]] = decodeAddr(fields[1])
			}
		}
		file.Close()
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, _ := os.ReadDir(fdDir)
	var out []string
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if addr, ok := listeners[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]; ok {
			out = append(out, addr)
		}
	}
	return out
}

// TestGlusterdHeketiVolumes: a volume named as glusterkube names heketi
// volumes, at the longest (100 bytes), can be made (its bricks' volfile
// names stay under glusterd's 255 bytes); a FUSE client reaches it through
// a storage host address added to glusterd's namespace, as a PV from a
// topology of real nodes names it; DeleteVolume removes it and its bricks,
// and again is no error.
func TestGlusterdHeketiVolumes(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := "vol_" + strings.Repeat("a", 87) + "_0123abcd"
	if len(name) != 100 {
		t.Fatalf("name of %d bytes", len(name))
	}
	bricks, err := g.CreateHeketiVolume(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	again, err := g.CreateHeketiVolume(ctx, name)
	if err != nil || strings.Join(again, " ") != strings.Join(bricks, " ") {
		t.Fatalf("again: %v %v, want %v", again, err, bricks)
	}

	for range 2 {
		if err := g.AddAddress(ctx, "10.0.0.11"); err != nil {
			t.Fatal(err)
		}
	}
	mnt := t.TempDir()
	if out, err := exec.CommandContext(ctx, "nsenter", "--net="+g.NetNS(), "--", "mount", "-t", "glusterfs", "10.0.0.11:/"+name, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount through the added address: %v: %s", err, out)
	}
	werr := os.WriteFile(filepath.Join(mnt, "x"), []byte("x"), 0o644)
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	if werr != nil {
		t.Fatalf("write through the mount: %v", werr)
	}
	if _, err := os.Stat(filepath.Join(bricks[0], "x")); err != nil {
		t.Errorf("file not on the brick: %v", err)
	}

	for range 2 {
		if err := g.DeleteVolume(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := g.Gluster(ctx, "volume", "list"); err != nil || strings.Contains(out, name) {
		t.Errorf("volume list after delete: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Dir(bricks[0])); !os.IsNotExist(err) {
		t.Errorf("bricks after delete: %v", err)
	}
}
