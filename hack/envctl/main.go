// Command envctl builds and runs the local test environment outside tests:
//
//	go run ./hack/envctl build   # build the cached component binaries
//	go run ./hack/envctl up      # start etcd, control plane, kwok nodes, heketi; Ctrl-C stops
//	go run ./hack/envctl up -real-node  # also a real node (kubelet + containerd)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: envctl build | up [-nodes N] [-real-node]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "build":
		if err := testenv.EnsureAll(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		nodes := fs.Int("nodes", 5, "kwok nodes to create")
		realNode := fs.Bool("real-node", false, "also start a real node (kubelet and containerd, in namespaces of its own) that runs real pods")
		_ = fs.Parse(os.Args[2:])
		start := time.Now()
		env, err := testenv.Start(ctx, testenv.Options{Kube: true, Heketi: true, Nodes: *nodes})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if *realNode {
			n, err := env.StartRealNode(ctx, "real-node-1")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				env.Stop()
				os.Exit(1)
			}
			fmt.Printf("real node %s: address %s (in its network namespace), pods in %s, files in %s\n"+
				"  pods need a toleration of %s=%s:%s and nodeSelector kubernetes.io/hostname=%s; images: %s, %s\n",
				n.Name, n.IP, n.PodCIDR, n.Dir, testenv.RealNodeTaint.Key, testenv.RealNodeTaint.Value, testenv.RealNodeTaint.Effect,
				n.Name, testenv.BusyboxImage, testenv.PauseImage)
		}
		fmt.Printf("environment up in %s\n  export KUBECONFIG=%s\n  export HEKETI_CLI_SERVER=%s\nCtrl-C stops it.\n",
			time.Since(start).Round(time.Millisecond), env.Kubeconfig, env.Heketi.URL)
		<-ctx.Done()
		env.Stop()
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
