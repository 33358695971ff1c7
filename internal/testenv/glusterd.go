package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A glusterd of glusterfs 10 cannot be moved to another port: the brick
// processes it spawns fetch their volfiles with `glusterfsd -s <host>` and
// no port, that is from 24007, and glustershd does the same. So each
// Glusterd runs in namespaces of its own (util-linux unshare):
//
//   - a network namespace holding only a loopback interface, where
//     glusterd listens on port 24007 of every loopback address (127.0.0.1,
//     127.0.0.2, … so that tests can name several volfile servers, as a
//     cluster's volume context does) and its bricks on 49152-49251, without
//     meeting any other glusterd; the FUSE clients join it with nsenter
//     --net (NetNS), and the gluster CLI talks to glusterd over a unix
//     socket in the temp dir;
//   - a PID namespace with glusterd as its init, so that ending glusterd
//     (StopAll, or Pdeathsig when the test binary dies) ends the bricks and
//     the self-heal daemon too, although they daemonize;
//   - a mount namespace where the paths glusterd 10 hard-codes despite its
//     working-directory, run-directory and logging-directory options (brick
//     and glustershd sockets in /var/run/gluster, geo-replication's template
//     and ss_brick in /var/lib/glusterd, snaps in /var/run/gluster) are bind
//     mounts of folders in the temp dir, so nothing is written to the
//     host's glusterd state.
//
// The FUSE mounts are made in the host's mount namespace, so tests see them.

const (
	// glusterdPort is glusterd's port inside its own network namespace.
	glusterdPort = 24007
	// brickHost names 127.0.0.1 in brick specs: the gluster CLI refuses
	// "127.0.0.1" and "localhost" there, and inet_aton reads "127.1" as
	// 127.0.0.1.
	brickHost = "127.1"
)

// glusterdInit runs as the init of the new namespaces ($1 is the temp dir,
// $2 the glusterd binary): loopback up, the hard-coded paths bound to the
// temp dir, copies of other tests' FUSE mounts dropped (they would keep
// those mounts alive after their owner unmounts them), then glusterd in the
// foreground, logging to stdout.
const glusterdInit = `set -e
ip link set lo up
for p in lib:/var/lib/glusterd run:/var/run/gluster log:/var/log/glusterfs; do
	mkdir -p "${p#*:}"
	mount --bind "$1/sys/${p%%:*}" "${p#*:}"
done
while read -r _ m t _; do
	if [ "$t" = fuse.glusterfs ]; then umount -l "$m" || true; fi
done < /proc/self/mounts
exec "$2" -N --volfile="$1/glusterd.vol" --pid-file="$1/run/glusterd.pid" --log-file=-
`

const glusterdVolfile = `volume management
    type mgmt/glusterd
    option working-directory %[1]s/work
    option run-directory %[1]s/run
    option logging-directory %[1]s/log
    option glusterd-sockfile %[1]s/glusterd.socket
    option transport-type socket
    option transport.address-family inet
    option transport.socket.bind-address 0.0.0.0
    option transport.socket.listen-port %[2]d
    option base-port 49152
    option max-port 49251
    option ping-timeout 0
    option event-threads 1
end-volume
`

// Glusterd is a glusterd of the test's own, with its bricks in its temp dir.
// Its network namespace has only a loopback interface, so its wildcard
// listeners are reachable from that namespace only.
type Glusterd struct {
	Dir string

	lock   *os.File // flock held while running; see sweepGlusterds
	proc   *process // unshare, parent of glusterd
	bins   map[string]string
	mu     sync.Mutex
	mounts map[string]*process // mount point -> FUSE client
	nmount int
}

// glusterdTempPrefix names the temp dirs, so that sweepGlusterds finds the
// ones a killed test binary left behind.
const glusterdTempPrefix = "glusterkube-glusterd-"

// glusterdPrereqs returns the binaries a Glusterd needs, or an error saying
// what is missing.
func glusterdPrereqs(ctx context.Context) (map[string]string, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("glusterd tests need root (namespaces and FUSE mounts)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, errors.New("/dev/fuse is missing: glusterd tests need FUSE (modprobe fuse, or --device /dev/fuse in a container)")
	}
	return namespaceBinaries(ctx, "glusterd", "gluster", "glusterfs")
}

// namespaceBinaries finds the named test binaries (Binary) and the tools
// every component run in namespaces of its own needs.
func namespaceBinaries(ctx context.Context, names ...string) (map[string]string, error) {
	bins := map[string]string{}
	for _, name := range names {
		p, err := Binary(ctx, name)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	for name, pkg := range map[string]string{"unshare": "util-linux", "nsenter": "util-linux", "ip": "iproute2"} {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("%s not found: install Debian's %s", name, pkg)
		}
		bins[name] = p
	}
	return bins, nil
}

// CanRunGlusterd reports why this machine cannot run a Glusterd (not
// root, no /dev/fuse, a missing binary), nil when it can.
func CanRunGlusterd(ctx context.Context) error {
	_, err := glusterdPrereqs(ctx)
	return err
}

// StartGlusterd starts a glusterd in a new temp dir. Close it with Close.
func StartGlusterd(ctx context.Context) (*Glusterd, error) {
	return startGlusterd(ctx, "")
}

// startGlusterd starts a glusterd in a new network namespace, or in the
// existing one at netns (a real node's: the node is then a storage node,
// and its processes reach glusterd on 127.0.0.1:24007).
func startGlusterd(ctx context.Context, netns string) (_ *Glusterd, err error) {
	bins, err := glusterdPrereqs(ctx)
	if err != nil {
		return nil, err
	}
	sweepGlusterds()
	dir, err := os.MkdirTemp("", glusterdTempPrefix)
	if err != nil {
		return nil, err
	}
	g := &Glusterd{Dir: dir, bins: bins, mounts: map[string]*process{}}
	defer func() {
		if err != nil {
			_ = g.Close()
		}
	}()
	// The lock file appears already locked, so a sweep never takes a dir
	// being set up for stale.
	if g.lock, err = os.Create(filepath.Join(dir, "lock.new")); err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(g.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := os.Rename(g.lock.Name(), filepath.Join(dir, "lock")); err != nil {
		return nil, err
	}
	for _, d := range []string{"work", "run", "log", "bricks", "mnt", "sys/lib", "sys/run", "sys/log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	vol := fmt.Sprintf(glusterdVolfile, dir, glusterdPort)
	if err := os.WriteFile(filepath.Join(dir, "glusterd.vol"), []byte(vol), 0o644); err != nil {
		return nil, err
	}
	// --kill-child: glusterd dies with unshare, and with it the namespace.
	bin, args := bins["unshare"], []string{
		"--net", "--pid", "--fork", "--kill-child", "--mount-proc",
		"sh", "-c", glusterdInit, "glusterd-init", dir, bins["glusterd"],
	}
	if netns != "" {
		// nsenter joins the network namespace and execs unshare (no
		// fork without --pid), so Pdeathsig still reaches unshare.
		bin, args = bins["nsenter"], append([]string{"--net=" + netns, "--", bin}, args[1:]...)
	}
	p, err := startProcess("glusterd", dir, bin, args, nil)
	if err != nil {
		return nil, err
	}
	g.proc = p
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = waitFor(ctx, p, "ready", func(ctx context.Context) error {
		_, err := g.Gluster(ctx, "volume", "list")
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// NewGlusterd starts a glusterd of the test's own, closed when the test
// ends. It skips the test when integration tests are off or the machine
// cannot run glusterd (failing it under CI=true).
func NewGlusterd(t testing.TB) *Glusterd {
	t.Helper()
	return newGlusterd(t, "")
}

// newGlusterd is NewGlusterd and RealNode.NewGlusterd: a glusterd in a new
// network namespace, or in the one at netns.
func newGlusterd(t testing.TB, netns string) *Glusterd {
	t.Helper()
	requireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := startGlusterd(ctx, netns)
	if err != nil {
		failOrSkip(t, fmt.Errorf("start glusterd: %w", err))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("glusterd logs:\n%s", g.Log())
		}
		if err := g.Close(); err != nil {
			t.Errorf("close glusterd: %v", err)
		}
	})
	return g
}

// NetNS is the path of glusterd's network namespace, for nsenter --net=:
// processes that must reach glusterd (FUSE clients, a CSI node plugin, a
// mount service) run in it.
func (g *Glusterd) NetNS() string {
	return "/proc/" + strconv.Itoa(g.proc.cmd.Process.Pid) + "/ns/net"
}

// ContainerCommand returns the command line (for StartProcess) that runs
// glusterkube with args (this binary re-executed, see Command) as a
// container of this glusterd's node would run it: in glusterd's network
// namespace (the node's storage network: a DaemonSet's hostNetwork), in a
// new PID namespace whose init is the command, so that ending it ends
// everything it started, FUSE clients included, and in the host's mount
// namespace (a container's Bidirectional mount propagation).
func (g *Glusterd) ContainerCommand(args ...string) (bin string, argv, env []string) {
	cmd, env := Command(args...)
	return g.bins["nsenter"], append([]string{"--net=" + g.NetNS(), "--", g.bins["unshare"], "--pid", "--fork", "--kill-child", "--"}, cmd...), env
}

// Gluster runs the gluster CLI against this glusterd (in script mode) and
// returns its standard output.
func (g *Glusterd) Gluster(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, g.bins["gluster"], append([]string{
		"--mode=script",
		"--glusterd-sock=" + filepath.Join(g.Dir, "glusterd.socket"),
		"--log-file=" + filepath.Join(g.Dir, "log", "cli.log"),
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + stdout.String())
		return stdout.String(), fmt.Errorf("gluster %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// CreateVolume creates and starts a volume of replica bricks (one brick
// when replica < 2), each a folder in the temp dir, and returns the brick
// folders.
func (g *Glusterd) CreateVolume(ctx context.Context, name string, replica int) ([]string, error) {
	n := max(replica, 1)
	args := []string{"volume", "create", name}
	if n > 1 {
		args = append(args, "replica", strconv.Itoa(n))
	}
	var bricks []string
	for i := range n {
		b := filepath.Join(g.brickDir(name), strconv.Itoa(i))
		if err := os.MkdirAll(b, 0o755); err != nil {
			return nil, err
		}
		bricks = append(bricks, b)
		args = append(args, brickHost+":"+b)
	}
	// force: the bricks are on the root file system.
	if _, err := g.Gluster(ctx, append(args, "force")...); err != nil {
		return nil, err
	}
	if _, err := g.Gluster(ctx, "volume", "start", name); err != nil {
		return nil, err
	}
	return bricks, nil
}

// CreateHeketiVolume makes the GlusterFS volume a heketi volume names:
// heketi's mock executor records volumes without making them, so a test
// that mounts a heketi volume (through the CSI node plugin, with the
// volume context heketi's answer gives) creates it here under the same
// name (vol_<id>, or the name heketi reports): replica 3 on directory
// bricks. A volume that already exists is left as it is. It returns the
// brick folders.
func (g *Glusterd) CreateHeketiVolume(ctx context.Context, name string) ([]string, error) {
	if _, err := g.Gluster(ctx, "volume", "info", name); err == nil {
		var bricks []string
		for i := range 3 {
			bricks = append(bricks, filepath.Join(g.brickDir(name), strconv.Itoa(i)))
		}
		return bricks, nil
	}
	return g.CreateVolume(ctx, name, 3)
}

// DeleteVolume stops and deletes a volume made by CreateVolume or
// CreateHeketiVolume, and removes its brick folders: what heketi does to
// the GlusterFS volume when it deletes its own. A volume that does not
// exist is no error.
func (g *Glusterd) DeleteVolume(ctx context.Context, name string) error {
	if _, err := g.Gluster(ctx, "volume", "info", name); err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		return err
	}
	// force: stop even when a FUSE client still has it mounted (the
	// client then sees its bricks go).
	if _, err := g.Gluster(ctx, "volume", "stop", name, "force"); err != nil && !strings.Contains(err.Error(), "is not in the started state") {
		return err
	}
	if _, err := g.Gluster(ctx, "volume", "delete", name); err != nil {
		return err
	}
	return os.RemoveAll(g.brickDir(name))
}

// brickDir is the folder of a volume's bricks. glusterd refuses a brick
// whose volfile name (<volume>.<host>.<brick path, / as ->.vol) reaches
// 255 bytes, so a long volume name (glusterkube's reach 100 bytes) is cut
// short here, a hash keeping it apart: the brick paths then stay shorter
// than heketi's own (/var/lib/heketi/mounts/vg_<id>/brick_<id>/brick,
// 103 bytes), and a volume heketi could make, this glusterd can too.
func (g *Glusterd) brickDir(volume string) string {
	name := volume
	if len(name) > 24 {
		sum := sha256.Sum256([]byte(volume))
		name = name[:16] + "-" + hex.EncodeToString(sum[:4])
	}
	return filepath.Join(g.Dir, "bricks", name)
}

// AddAddress adds ip (an IPv4 address) to the loopback interface of
// glusterd's network namespace, where glusterd listens on every address:
// storage hosts of a heketi topology written for real nodes (10.0.0.11, …)
// then reach this glusterd, so a PV's volume context works unchanged.
func (g *Glusterd) AddAddress(ctx context.Context, ip string) error {
	out, err := exec.CommandContext(ctx, g.bins["nsenter"], "--net="+g.NetNS(), "--",
		g.bins["ip"], "address", "add", ip+"/32", "dev", "lo").CombinedOutput()
	// An address already there is fine (iproute2 says "File exists" or
	// "Address already assigned", depending on its version).
	if err != nil && !strings.Contains(string(out), "File exists") && !strings.Contains(string(out), "already assigned") {
		return fmt.Errorf("add address %s in glusterd's network namespace: %w: %s", ip, err, bytes.TrimSpace(out))
	}
	return nil
}

// HasVolume reports whether glusterd knows a volume named name.
func (g *Glusterd) HasVolume(ctx context.Context, name string) bool {
	_, err := g.Gluster(ctx, "volume", "info", name)
	return err == nil
}

// Mount mounts a volume with the FUSE client on a new folder in the temp
// dir and returns it. Close (or Unmount) unmounts it.
func (g *Glusterd) Mount(ctx context.Context, volume string) (string, error) {
	g.mu.Lock()
	g.nmount++
	dir := filepath.Join(g.Dir, "mnt", fmt.Sprintf("%s-%d", volume, g.nmount))
	name := fmt.Sprintf("mount-%s-%d", volume, g.nmount)
	g.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// The client joins glusterd's network namespace only; its mount is made
	// in the host's mount namespace. -N keeps it our child, so StopAll and
	// Pdeathsig end it (it unmounts on SIGTERM).
	p, err := startProcess(name, g.Dir, g.bins["nsenter"], []string{
		"--net=" + g.NetNS(), "--",
		g.bins["glusterfs"], "-N", "--log-file=-",
		"--volfile-server=127.0.0.1", "--volfile-server-port=" + strconv.Itoa(glusterdPort),
		"--volfile-id=" + volume, dir,
	}, nil)
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	g.mounts[dir] = p
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = waitFor(ctx, p, "mounted", func(context.Context) error {
		if !slices.Contains(fuseMounts(dir), dir) {
			return errors.New("not in /proc/self/mountinfo yet")
		}
		// The root of a gluster volume is inode 1 once the client has its
		// graph (mount.glusterfs checks the same).
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return err
		}
		if st.Ino != 1 {
			return fmt.Errorf("root inode %d, want 1", st.Ino)
		}
		return nil
	})
	if err != nil {
		_ = g.Unmount(dir)
		return "", err
	}
	return dir, nil
}

// Unmount unmounts a folder Mount returned and ends its client.
func (g *Glusterd) Unmount(dir string) error {
	g.mu.Lock()
	p, ok := g.mounts[dir]
	delete(g.mounts, dir)
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s is not a mount of this glusterd", dir)
	}
	err := unmount(dir)
	p.stop(5 * time.Second)
	if err == nil {
		err = os.Remove(dir)
	}
	return err
}

// unmount unmounts dir, lazily when it is busy or its client is gone.
func unmount(dir string) error {
	err := syscall.Unmount(dir, 0)
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	if errors.Is(err, syscall.EINVAL) { // not mounted (any more)
		err = nil
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// Close unmounts the volumes, stops glusterd (and so its bricks) and
// removes the temp dir.
func (g *Glusterd) Close() error {
	var errs []error
	g.mu.Lock()
	dirs := make([]string, 0, len(g.mounts))
	for d := range g.mounts {
		dirs = append(dirs, d)
	}
	g.mu.Unlock()
	for _, d := range dirs {
		if err := g.Unmount(d); err != nil {
			errs = append(errs, err)
		}
	}
	g.proc.stop(10 * time.Second)
	// A mount this package did not make (a test's own) would block the
	// removal; detach whatever is still mounted under the dir.
	for _, m := range fuseMounts(g.Dir) {
		errs = append(errs, unmount(m), fmt.Errorf("%s was still mounted", m))
	}
	if err := os.RemoveAll(g.Dir); err != nil {
		errs = append(errs, err)
	}
	if g.lock != nil {
		g.lock.Close()
	}
	return errors.Join(errs...)
}

// Pids returns the host pids of this glusterd's processes: glusterd, the
// bricks, the self-heal daemon and the FUSE clients (every process whose
// command line names the temp dir). They share one network namespace, so
// /proc/<pid>/net/tcp of any of them lists their sockets.
func (g *Glusterd) Pids() []int { return pidsNaming(g.Dir) }

// pidsNaming returns the pids of the processes whose command line names dir.
func pidsNaming(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, pid)
		}
	}
	return out
}

// Log returns the last lines of glusterd's log and of the brick, self-heal
// and FUSE client logs, for failure messages.
func (g *Glusterd) Log() string {
	var b strings.Builder
	if g.proc != nil {
		fmt.Fprintf(&b, "== %s\n%s\n", g.proc.logPath, g.proc.tail(50))
	}
	logs, _ := filepath.Glob(filepath.Join(g.Dir, "log", "bricks", "*.log"))
	more, _ := filepath.Glob(filepath.Join(g.Dir, "log", "glustershd.log"))
	mounts, _ := filepath.Glob(filepath.Join(g.Dir, "mount-*.log"))
	for _, l := range slices.Concat(logs, more, mounts) {
		fmt.Fprintf(&b, "== %s\n%s\n", l, tailFile(l, 15))
	}
	return b.String()
}

func tailFile(path string, n int) string {
	p := &process{logPath: path}
	return p.tail(n)
}

// fuseMounts returns the glusterfs FUSE mount points at or under dir.
func fuseMounts(dir string) []string { return MountsIn("/proc/self/mountinfo", dir, "fuse.glusterfs") }

// MountsIn returns the mount points at or under dir that the mountinfo
// file lists (/proc/self/mountinfo, or /proc/PID/mountinfo for another
// mount namespace), of file system type fstype ("" for any).
func MountsIn(mountinfo, dir, fstype string) []string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source ...
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) || fstype != "" && fields[sep+1] != fstype {
			continue
		}
		m := unescapeMount(fields[4])
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sweepGlusterds removes the temp dirs of Glusterds whose test binary was
// killed before Close: their processes died with it (Pdeathsig, then the
// PID namespace), but their FUSE mounts stay behind, disconnected. A dir
// is stale when nobody holds its lock.
func sweepGlusterds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), glusterdTempPrefix+"*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			continue // not ours, or not locked yet
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			for _, m := range fuseMounts(dir) {
				_ = unmount(m)
			}
			_ = os.RemoveAll(dir)
		}
		f.Close()
	}
}
