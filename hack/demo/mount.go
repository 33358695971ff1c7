package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// The claim whose volume the demo mounts, and its pod (the StatefulSet's
// first).
const (
	mountClaim = "data-springboot-web-0"
	mountPod   = "springboot-web-0"
)

// mountThroughNodePlugin mounts a Bound claim's volume through the CSI
// node plugin, as the kubelet does for the claim's pod: it starts a real
// glusterd (in namespaces of its own, see testenv.Glusterd), makes there
// the GlusterFS volume heketi's mock executor only recorded, runs the mount
// service and the node plugin as the node's containers would run (host
// processes in glusterd's network namespace, the node's storage network),
// publishes the claim's PV with exactly its volume handle, attributes and
// mount options, writes a line through the mount, shows it on a brick and
// unpublishes. A machine that cannot run glusterd (not root, no
// /dev/fuse) skips the step, with the reason; under CI=true that fails.
func (d *demo) mountThroughNodePlugin(ctx context.Context) {
	if err := testenv.CanRunGlusterd(ctx); err != nil {
		if testenv.InCI() {
			d.skipOrFail("mount through the node plugin", fmt.Errorf("this machine cannot run glusterd: %w", err))
			return
		}
		d.say("(skipped: this machine cannot run glusterd: %v)", err)
		return
	}
	if err := d.mountSteps(ctx); err != nil {
		d.skipOrFail("mount through the node plugin", err)
	}
}

func (d *demo) mountSteps(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	claim, err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).Get(ctx, mountClaim, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pv.Spec.CSI == nil {
		return fmt.Errorf("PV %s has no CSI source", pv.Name)
	}
	pod, err := d.kube.CoreV1().Pods(demoNamespace).Get(ctx, mountPod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	attrs := pv.Spec.CSI.VolumeAttributes
	d.say("claim %s -> PV %s: driver %s, volumeHandle %s", claim.Name, pv.Name, pv.Spec.CSI.Driver, pv.Spec.CSI.VolumeHandle)
	d.say("volumeAttributes: servers=%s volume=%s", attrs[csi.ContextServers], attrs[csi.ContextVolume])

	g, err := testenv.StartGlusterd(ctx)
	if err != nil {
		return fmt.Errorf("start glusterd: %w", err)
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(d.out, "      glusterd logs:\n%s\n", indent(g.Log(), "        "))
		}
		if cerr := g.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close glusterd: %w", cerr)
		}
	}()
	// The PV names the topology's storage hosts: this glusterd answers
	// on them inside its network namespace, where the node runs.
	servers := strings.Split(attrs[csi.ContextServers], ",")
	for _, s := range servers {
		if err := g.AddAddress(ctx, s); err != nil {
			return err
		}
	}
	d.say("glusterd started in its own network namespace, answering on the storage hosts %s", strings.Join(servers, ", "))
	bricks, err := g.CreateHeketiVolume(ctx, attrs[csi.ContextVolume])
	if err != nil {
		return err
	}
	d.say("heketi's mock executor only recorded %s: made it on glusterd, replica 3 on folder bricks", attrs[csi.ContextVolume])

	dir, err := os.MkdirTemp("", "glusterkube-demo-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubelet := filepath.Join(dir, "kubelet")
	mounterSock, pluginSock := filepath.Join(dir, "mounter.sock"), filepath.Join(dir, "csi.sock")
	var procs []*testenv.Process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if err != nil {
				fmt.Fprintf(d.out, "      %s log:\n%s\n", filepath.Base(procs[i].LogPath()), indent(procs[i].Log(20), "        "))
			}
			procs[i].Stop(10 * time.Second)
		}
	}()
	fmt.Fprintf(d.out, "    $ NODE=%s  # the node's folder: kubelet dir, sockets, state, logs\n", dir)
	start := func(name string, args ...string) (*testenv.Process, error) {
		fmt.Fprintf(d.out, "    $ nsenter --net=<glusterd's netns> glusterkube %s &\n", strings.ReplaceAll(strings.Join(args, " "), dir, "$NODE"))
		bin, argv, env := g.ContainerCommand(args...)
		p, err := testenv.StartProcess(name, dir, bin, argv, env)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	mnt, err := start("mounter", "mounter", "--endpoint=unix://"+mounterSock, "--allowed-dir="+kubelet)
	if err != nil {
		return err
	}
	if err := mnt.WaitFor(ctx, "serving", func(context.Context) error { _, err := os.Stat(mounterSock); return err }); err != nil {
		return err
	}
	nodeName := pod.Spec.NodeName
	if nodeName == "" {
		nodeName = "node-1"
	}
	plugin, err := start("csi-node", "csi", "--services=node", "--endpoint=unix://"+pluginSock, "--node-id="+nodeName,
		"--kubelet-dir="+kubelet, "--kubelet-registration=false", "--mounter-endpoint=unix://"+mounterSock,
		"--state-dir="+filepath.Join(dir, "state"), "--log-dir="+filepath.Join(dir, "log"), "--events=false")
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+pluginSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	node, ident := csipb.NewNodeClient(conn), csipb.NewIdentityClient(conn)
	if err := plugin.WaitFor(ctx, "ready", func(ctx context.Context) error { _, err := ident.Probe(ctx, &csipb.ProbeRequest{}); return err }); err != nil {
		return err
	}
	caps, err := node.NodeGetCapabilities(ctx, &csipb.NodeGetCapabilitiesRequest{})
	if err != nil {
		return err
	}
	d.say("mount service and node plugin ready")

	// What the kubelet sends for the pod (examples/csi's CSIDriver has
	// podInfoOnMount: true).
	publish := testenv.CSIPublish{PV: pv, Pod: pod, KubeletDir: kubelet, PodInfoOnMount: true,
		SingleNodeMultiWriter: slices.ContainsFunc(caps.GetCapabilities(), func(c *csipb.NodeServiceCapability) bool {
			return c.GetRpc().GetType() == csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER
		})}
	req := publish.Request()
	target := publish.Target()
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    $ TARGET=$NODE/kubelet/pods/%s/volumes/kubernetes.io~csi/%s/mount\n", pod.UID, pv.Name)
	fmt.Fprintf(d.out, "    NodePublishVolume(volume_id=%s, target_path=$TARGET, access_mode=%s, mount_flags=%v, volume_context=the PV's volumeAttributes + pod info)\n",
		req.GetVolumeId(), req.GetVolumeCapability().GetAccessMode().GetMode(), req.GetVolumeCapability().GetMount().GetMountFlags())
	if _, err := node.NodePublishVolume(ctx, req); err != nil {
		return fmt.Errorf("NodePublishVolume: %w", err)
	}
	unpublished := false
	defer func() {
		if !unpublished {
			_, _ = node.NodeUnpublishVolume(context.WithoutCancel(ctx), &csipb.NodeUnpublishVolumeRequest{VolumeId: req.GetVolumeId(), TargetPath: target})
		}
	}()
	src, fstype := mountOf(target)
	d.say("mounted: %s on the target (%s)", src, fstype)

	line := fmt.Sprintf("hello from pod %s/%s, written through the CSI node plugin\n", pod.Namespace, pod.Name)
	fmt.Fprintf(d.out, "    $ echo %q > $TARGET/hello.txt\n", strings.TrimSuffix(line, "\n"))
	if err := os.WriteFile(filepath.Join(target, "hello.txt"), []byte(line), 0o644); err != nil {
		return fmt.Errorf("write through the mount: %w", err)
	}
	brick := filepath.Join(bricks[0], "hello.txt")
	got, err := os.ReadFile(brick)
	if err != nil {
		return fmt.Errorf("read the brick: %w", err)
	}
	fmt.Fprintf(d.out, "    $ cat %s\n", brick)
	d.say("%s", strings.TrimSuffix(string(got), "\n"))
	if string(got) != line {
		return fmt.Errorf("brick %s holds %q, want %q", brick, got, line)
	}
	d.say("the line is on the brick: %d bytes", len(got))

	fmt.Fprintf(d.out, "    NodeUnpublishVolume(volume_id=%s, target_path=$TARGET)\n", req.GetVolumeId())
	if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: req.GetVolumeId(), TargetPath: target}); err != nil {
		return fmt.Errorf("NodeUnpublishVolume: %w", err)
	}
	unpublished = true
	if src, _ := mountOf(target); src != "" {
		return fmt.Errorf("%s is still mounted at the target after unpublish", src)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("target after unpublish: %v, want it gone", err)
	}
	d.say("unpublished: nothing mounted, target removed")
	return nil
}

// mountOf returns the source and type of the mount at dir, "" when none.
func mountOf(dir string) (source, fstype string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == dir {
			source, fstype = f[0], f[2]
		}
	}
	return source, fstype
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
