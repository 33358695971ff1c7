package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running component. Its output goes to a log file in its
// directory; the tail is shown when it fails.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// running tracks every process this test binary started, so that Stop and
// the signal handler can end them all.
var (
	runningMu sync.Mutex
	running   = map[*process]struct{}{}
)

func startProcess(name, dir, bin string, args []string, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// Own process group, and killed with the test binary if it dies
	// without cleaning up (Pdeathsig).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	runningMu.Lock()
	running[p] = struct{}{}
	runningMu.Unlock()
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	defer func() {
		runningMu.Lock()
		delete(running, p)
		runningMu.Unlock()
	}()
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// tail returns the last lines of the process log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *process) failure(what string) error {
	state := "still running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Errorf("%s %s (%s); last lines of %s:\n%s", p.name, what, state, p.logPath, p.tail(25))
}

// stopAll ends every process still running (used on signals and at exit).
func stopAll() {
	runningMu.Lock()
	ps := make([]*process, 0, len(running))
	for p := range running {
		ps = append(ps, p)
	}
	runningMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(5 * time.Second) }()
	}
	wg.Wait()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Ports handed out are remembered so two components never get the same.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPorts[port] {
			usedPorts[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// waitFor calls check until it returns nil, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	delay := 20 * time.Millisecond
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if p != nil && p.exited() {
			return p.failure("did not become " + what)
		}
		select {
		case <-ctx.Done():
			if p != nil {
				return fmt.Errorf("%w: %v", p.failure("did not become "+what+" in time"), last)
			}
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// Running lists the components this process started that are still
// running (name and pid).
func Running() []string {
	runningMu.Lock()
	defer runningMu.Unlock()
	var out []string
	for p := range running {
		if !p.exited() {
			out = append(out, fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid))
		}
	}
	return out
}

// StopAll stops every component this process started.
func StopAll() { stopAll() }

// pids returns the process ids of the running components by name.
func pids() map[string]int {
	runningMu.Lock()
	defer runningMu.Unlock()
	out := map[string]int{}
	for p := range running {
		if !p.exited() {
			out[fmt.Sprintf("%s-%d", p.name, p.cmd.Process.Pid)] = p.cmd.Process.Pid
		}
	}
	return out
}

// Process is a command a test started as a component: its output in a
// log file, its own process group, killed with the test binary.
type Process struct{ p *process }

// StartProcess starts bin with args (and env added to this process's) as
// a component named name, logging to name.log in dir. Stop or Kill it.
func StartProcess(name, dir, bin string, args, env []string) (*Process, error) {
	p, err := startProcess(name, dir, bin, args, env)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// Pid is the process id (in this process's PID namespace).
func (p *Process) Pid() int { return p.p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool { return p.p.exited() }

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process.
func (p *Process) Stop(grace time.Duration) { p.p.stop(grace) }

// Kill SIGKILLs the process group at once — what happens to a container's
// processes when it is killed — and waits for the process.
func (p *Process) Kill() {
	if !p.p.exited() {
		_ = syscall.Kill(-p.p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.p.done
	runningMu.Lock()
	delete(running, p.p)
	runningMu.Unlock()
}

// Log returns the last lines of the process's log.
func (p *Process) Log(lines int) string { return p.p.tail(lines) }

// LogPath is the process's log file.
func (p *Process) LogPath() string { return p.p.logPath }

// WaitFor calls check until it returns nil, the process exits, or ctx
// ends; the error then tells which, with the log's last lines.
func (p *Process) WaitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return waitFor(ctx, p.p, what, check)
}

// commandEnv marks a test binary re-executed as glusterkube.
const commandEnv = "GLUSTERKUBE_TESTENV_COMMAND"

// RunCommandIfAsked lets a test binary run as the glusterkube command, so
// tests can start real glusterkube processes (a CSI node plugin, a mount
// service) without building the binary. Call it first in TestMain with
// the command's main (app.Main, from a _test package): when the binary
// was started through Command, it runs main and exits.
func RunCommandIfAsked(main func(args []string) int) {
	if os.Getenv(commandEnv) == "1" {
		os.Exit(main(os.Args[1:]))
	}
}

// Command returns the argv and the environment that run glusterkube with
// args: this test binary, re-executed (see RunCommandIfAsked).
func Command(args ...string) (argv []string, env []string) {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return append([]string{self}, args...), []string{commandEnv + "=1"}
}
