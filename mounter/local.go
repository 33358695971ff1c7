package mounter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"
)

// LocalConfig configures a Local mounter.
type LocalConfig struct {
	// AllowedDir, when set, is the folder every target must be under (the
	// kubelet's folder in a cluster): a mount service mounts nothing
	// elsewhere, whoever asks.
	AllowedDir string
	// Timeout bounds each operation when the caller's context has no
	// earlier deadline; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Local mounts in this process with k8s.io/mount-utils (`mount -t
// glusterfs`). Its FUSE clients belong to this process's PID namespace and
// cgroup: in a container, they die with it.
type Local struct {
	cfg LocalConfig
	m   mount.Interface

	mu   sync.Mutex
	busy map[string]bool // targets with an operation in flight
}

var _ Mounter = (*Local)(nil)

// killGrace is how long a timed-out operation, its processes killed, is
// given to return.
const killGrace = 5 * time.Second

// NewLocal returns a Local mounter. When this process is the init of its
// PID namespace (a container's PID 1), it also starts reaping the FUSE
// clients that daemonize under it.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AllowedDir != "" {
		cfg.AllowedDir = filepath.Clean(cfg.AllowedDir)
	}
	startReaper()
	l := &Local{cfg: cfg, busy: map[string]bool{}}
	// mount.New runs `umount` once to learn its behaviour.
	_ = runCommand(func() error { l.m = mount.New(""); return nil })
	return l
}

// safeArg matches what may reach mount.glusterfs, a shell script that
// splits its arguments on blanks and runs them unquoted: no blanks, quotes
// or shell characters, so a volume context or mount option can never
// inject an argument.
var safeArg = regexp.MustCompile(`^[A-Za-z0-9_.,:=/@%+~\[\]-]+$`)

func (l *Local) checkTarget(target string) error {
	if target == "" {
		return errorf(Invalid, "target is empty")
	}
	if !filepath.IsAbs(target) || filepath.Clean(target) != target {
		return errorf(Invalid, "target %q must be an absolute, clean path", target)
	}
	if !safeArg.MatchString(target) {
		return errorf(Invalid, "target %q has characters the GlusterFS mount helper cannot take (blanks, quotes or shell characters)", target)
	}
	if d := l.cfg.AllowedDir; d != "" && target != d && !strings.HasPrefix(target, d+"/") {
		return errorf(Invalid, "target %s is outside %s, the only folder this mount service mounts in", target, d)
	}
	return nil
}

func (l *Local) checkMount(req MountRequest) error {
	if err := l.checkTarget(req.Target); err != nil {
		return err
	}
	if req.FSType != FSType {
		return errorf(Invalid, "file system type %q: only %s is mounted here", req.FSType, FSType)
	}
	if !safeArg.MatchString(req.Source) || !strings.Contains(req.Source, ":") {
		return errorf(Invalid, "source %q: want server:/volume, without blanks or shell characters", req.Source)
	}
	for _, o := range req.Options {
		if !safeArg.MatchString(o) {
			return errorf(Invalid, "mount option %q has blanks, quotes or shell characters, which the GlusterFS mount helper cannot take", o)
		}
	}
	return nil
}

// acquire marks target busy; it fails when an operation on it is in flight.
func (l *Local) acquire(target string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[target] {
		return nil, errorf(Busy, "another mount or unmount of %s is in progress", target)
	}
	l.busy[target] = true
	return func() {
		l.mu.Lock()
		delete(l.busy, target)
		l.mu.Unlock()
	}, nil
}

func (l *Local) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.cfg.Timeout)
}

// Mount mounts req.Source on req.Target, a folder it makes if missing.
func (l *Local) Mount(ctx context.Context, req MountRequest) error {
	if err := l.checkMount(req); err != nil {
		return err
	}
	release, err := l.acquire(req.Target)
	if err != nil {
		return err
	}
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	logger := klog.FromContext(ctx).WithValues("target", req.Target, "source", req.Source)

	logFile := optionValue(req.Options, "log-file")
	var logStart int64
	if logFile != "" {
		if err := os.MkdirAll(filepath.Dir(logFile), 0o750); err != nil {
			release()
			return errorf(Failed, "make the folder of the client log %s: %v", logFile, err)
		}
		if fi, err := os.Stat(logFile); err == nil {
			logStart = fi.Size()
		}
	}
	if err := os.MkdirAll(req.Target, 0o750); err != nil {
		release()
		return errorf(Failed, "make the target folder %s: %v", req.Target, err)
	}

	start := time.Now()
	err = l.bounded(ctx, req.Target, release, func() error {
		return runCommand(func() error { return l.m.Mount(req.Source, req.Target, req.FSType, req.Options) })
	})
	if err == nil {
		release()
		logger.V(2).Info("Mounted", "options", req.Options, "duration", time.Since(start))
		return nil
	}
	if CodeOf(err) == Busy { // stuck: its goroutine still holds the target
		return err
	}
	// mount.glusterfs can fail after the client mounted (the volume's
	// graph never came up): a failed mount leaves nothing mounted.
	l.detach(logger, req.Target)
	release()
	if CodeOf(err) == Timeout {
		return err
	}
	return mountError(err, req, logFile, logStart)
}

// bounded runs op and waits for it until ctx ends. Then it kills the
// processes of target, so op returns, and reports a Timeout. If op does not
// return even then (a process in uninterruptible sleep), the target stays
// busy until it does — release is called then — and the error is Busy.
func (l *Local) bounded(ctx context.Context, target string, release func(), op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	n := killTargetProcs(target)
	klog.FromContext(ctx).Info("Operation timed out: killed its processes", "target", target, "processes", n)
	select {
	case <-done:
		return errorf(Timeout, "did not finish in time (%v): its processes were killed", context.Cause(ctx))
	case <-time.After(killGrace):
	}
	go func() { <-done; release() }()
	return errorf(Busy, "an operation on %s is stuck even after its processes were killed; the target stays busy until it returns", target)
}

// detach unmounts whatever a failed operation left on target (lazily, as
// its client may be gone) and waits for its processes.
func (l *Local) detach(logger klog.Logger, target string) {
	if st, _ := inspect(target, time.Second); st.Mounted {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			logger.Error(err, "Detaching a failed mount failed")
		}
	}
	waitTargetProcs(target, killGrace)
}

var mountOutput = regexp.MustCompile(`(?s)Output: (.*)$`)

// mountError turns mount-utils' error (command, arguments, output) into a
// short message, with the client log's errors of this attempt, and a class.
func mountError(err error, req MountRequest, logFile string, logStart int64) error {
	msg := strings.TrimSpace(err.Error())
	if m := mountOutput.FindStringSubmatch(msg); m != nil {
		msg = strings.TrimSpace(m[1])
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg += " (" + ee.Error() + ")"
	}
	logErrs := clientLogErrors(logFile, logStart)
	code := Failed
	if strings.Contains(msg, "Invalid option") {
		code = Invalid // mount.glusterfs does not know a mount option
	}
	if strings.Contains(logErrs, "failed to fetch volume file") || strings.Contains(logErrs, "failed to get the 'volume file'") {
		code = NotFound
	}
	out := fmt.Sprintf("mount -t %s %s %s: %s", req.FSType, req.Source, req.Target, oneLine(msg))
	if code == NotFound {
		vol := req.Source[strings.LastIndex(req.Source, ":")+1:]
		out = fmt.Sprintf("the GlusterFS servers do not know volume %s: %s", strings.TrimPrefix(vol, "/"), out)
	}
	if logErrs != "" {
		out += "; client log " + logFile + ": " + logErrs
	}
	return &Error{Code: code, Message: out}
}

// clientLogErrors returns the error lines the FUSE client wrote to its
// log since offset, without their timestamps.
func clientLogErrors(logFile string, offset int64) string {
	if logFile == "" {
		return ""
	}
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	n, _ := f.ReadAt(buf, offset)
	var lines []string
	for line := range strings.SplitSeq(string(buf[:n]), "\n") {
		// [date time] E [file:line:func] 0-xlator: message
		if _, rest, ok := strings.Cut(line, "] E ["); ok {
			if _, m, ok := strings.Cut(rest, "] "); ok {
				lines = append(lines, m)
			}
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "; ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// optionValue returns the value of key=value among options.
func optionValue(options []string, key string) string {
	for _, o := range options {
		for kv := range strings.SplitSeq(o, ",") {
			if v, ok := strings.CutPrefix(kv, key+"="); ok {
				return v
			}
		}
	}
	return ""
}

// Unmount unmounts target: umount, bounded by the deadline; a client that
// does not let go is killed and the mount detached. It then waits for the
// target's FUSE client to exit, so nothing of the mount is left.
func (l *Local) Unmount(ctx context.Context, target string) error {
	if err := l.checkTarget(target); err != nil {
		return err
	}
	release, err := l.acquire(target)
	if err != nil {
		return err
	}
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	logger := klog.FromContext(ctx).WithValues("target", target)
	st, err := inspect(target, time.Second)
	if err != nil {
		release()
		return errorf(Failed, "inspect %s: %v", target, err)
	}
	if !st.Mounted {
		waitTargetProcs(target, killGrace)
		release()
		return nil
	}
	err = l.bounded(ctx, target, release, func() error {
		if st.Corrupted {
			// Nothing answers on a dead mount: umount would fail or block.
			return syscall.Unmount(target, syscall.MNT_DETACH)
		}
		return runCommand(func() error { return l.m.Unmount(target) })
	})
	if CodeOf(err) == Busy {
		return err
	}
	defer release()
	if err != nil {
		logger.Info("Unmount failed: killing the client and detaching the mount", "err", err)
		killTargetProcs(target)
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return errorf(Failed, "unmount %s: %v", target, err)
		}
	}
	if waitTargetProcs(target, killGrace) {
		logger.Info("FUSE client did not exit after the unmount: killed it")
	}
	logger.V(2).Info("Unmounted")
	return nil
}

// Probe checks that the GlusterFS FUSE client is installed and /dev/fuse
// exists.
func (l *Local) Probe(context.Context) error { return ProbeClient() }

// ProbeClient checks that this machine (or container) can make GlusterFS
// FUSE mounts.
func ProbeClient() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errorf(Unavailable, "/dev/fuse is missing: the GlusterFS FUSE client needs it (a privileged container with /dev/fuse mounted)")
	}
	if _, err := helperPath(); err != nil {
		return err
	}
	if _, err := exec.LookPath("glusterfs"); err != nil {
		if _, err := os.Stat("/usr/sbin/glusterfs"); err != nil {
			return errorf(Unavailable, "the GlusterFS FUSE client (glusterfs) is not installed: install Debian's glusterfs-client")
		}
	}
	return nil
}

// helperPath finds mount.glusterfs, which mount(8) runs for -t glusterfs.
func helperPath() (string, error) {
	for _, p := range []string{"/sbin/mount.glusterfs", "/usr/sbin/mount.glusterfs"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errorf(Unavailable, "the GlusterFS mount helper (mount.glusterfs) is not installed: install Debian's glusterfs-client")
}
