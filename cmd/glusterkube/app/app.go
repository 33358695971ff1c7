// Package app is the glusterkube command line: it parses flags, builds
// clients and calls the library packages (topology, nodes, daemonset,
// provisioner). Only Main decides the exit code.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Command is one (sub)command. A command has either Run or Sub.
type Command struct {
	Name  string
	Short string
	// Usage is the argument synopsis shown after the command path.
	Usage string
	// Flags adds the command's own flags; the shared ones are added by the
	// command through the Globals helpers it needs.
	Flags func(fs *pflag.FlagSet, g *Globals)
	Run   func(ctx context.Context, g *Globals, args []string) error
	Sub   []*Command
}

// UsageError is a mistake in the command line (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, a ...any) error { return &UsageError{Err: fmt.Errorf(format, a...)} }

// ErrSilent fails with exit code 1 after the command already printed what
// went wrong (e.g. a validation report).
var ErrSilent = errors.New("failed")

// Main runs glusterkube with args and returns the exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, args, Streams{In: in, Out: out, Err: errOut})
	klog.Flush()
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrSilent):
		return ExitFail
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(errOut, "error: %s\n", withFlags(err.Error()))
		return ExitUsage
	}
	fmt.Fprintf(errOut, "error: %s\n", withFlags(err.Error()))
	return ExitFail
}

// Run runs glusterkube with args. It is what tests call.
func Run(ctx context.Context, args []string, s Streams) error {
	return dispatch(ctx, Root(), nil, args, s)
}

// Root returns the command tree.
func Root() *Command {
	return &Command{
		Name:  "glusterkube",
		Short: "GlusterFS storage on Kubernetes through heketi",
		Sub: []*Command{
			topologyCommand(),
			nodesCommand(),
			daemonsetCommand(),
			provisionerCommand(),
			runCommand(),
			csiCommand(),
			mounterCommand(),
			migrateCommand(),
			versionCommand(),
		},
	}
}

func dispatch(ctx context.Context, cmd *Command, path []string, args []string, s Streams) error {
	path = append(path, cmd.Name)
	if len(cmd.Sub) > 0 {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			if len(args) == 0 {
				printGroupUsage(s.Err, cmd, path)
				return Usagef("%s needs a command", strings.Join(path, " "))
			}
			printGroupUsage(s.Out, cmd, path)
			return nil
		}
		for _, sub := range cmd.Sub {
			if sub.Name == args[0] {
				return dispatch(ctx, sub, path, args[1:], s)
			}
		}
		printGroupUsage(s.Err, cmd, path)
		return Usagef("unknown command %q for %q", args[0], strings.Join(path, " "))
	}
	g := &Globals{Streams: s, Getenv: os.Getenv}
	fs := pflag.NewFlagSet(strings.Join(path, " "), pflag.ContinueOnError)
	fs.SetOutput(s.Err)
	fs.SortFlags = false
	if cmd.Flags != nil {
		cmd.Flags(fs, g)
	}
	fs.IntVarP(&g.Verbosity, "v", "v", 0, "log verbosity (klog level)")
	// pflag calls Usage itself on --help; print it once, here, to stdout.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(s.Out, "%s\n\nUsage:\n  %s %s\n\nFlags:\n%s\n", cmd.Short, strings.Join(path, " "), cmd.Usage, fs.FlagUsages())
			return err
		}
		return &UsageError{Err: fmt.Errorf("%w (see %q)", err, strings.Join(path, " ")+" --help")}
	}
	setupLogging(g.Verbosity, s.Err)
	return cmd.Run(ctx, g, fs.Args())
}

func printGroupUsage(w io.Writer, cmd *Command, path []string) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s <command> [flags]\n\nCommands:\n", cmd.Short, strings.Join(path, " "))
	for _, sub := range cmd.Sub {
		fmt.Fprintf(w, "  %-12s %s\n", sub.Name, sub.Short)
	}
	fmt.Fprintf(w, "\nUse \"%s <command> --help\" for more about a command.\n", strings.Join(path, " "))
}

func setupLogging(v int, w io.Writer) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", fmt.Sprint(v))
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	// Every severity writes to w; without one_output klog also copies an
	// error into the warning and info outputs, so it would print 3 times.
	_ = fs.Set("one_output", "true")
	klog.SetOutput(w)
}

// NoArgs checks that a command got no positional arguments.
func NoArgs(args []string) error {
	if len(args) > 0 {
		return Usagef("unexpected arguments: %s", strings.Join(args, " "))
	}
	return nil
}
