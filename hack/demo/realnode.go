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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// The claim and the pod of the real node's step.
const (
	helloClaim = "hello"
	helloPod   = "hello"
	helloClass = "glusterfs-delete"
)

// realNodeCheck says why this machine cannot run the real-node step (nil
// when it can): a real node, and a glusterd on it.
func realNodeCheck(ctx context.Context) error {
	if err := testenv.CanRunRealNode(ctx); err != nil {
		return err
	}
	return testenv.CanRunGlusterd(ctx)
}

// realNodeWrites is what a user sees last: a real node (a kubelet and
// containerd, see testenv.RealNode) joins the cluster as a storage node
// (a glusterd on it answers on the topology's storage hosts); the CSI
// driver is installed from examples/csi as it ships (the node plugin and
// the mount service as DaemonSets, their image built here since no
// registry is reachable); a claim is provisioned, and a pod on the real
// node writes to it — the kubelet mounts the volume through the node
// plugin — and the bytes are read from a brick.
func (d *demo) realNodeWrites(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	start := time.Now()
	node, err := d.env.StartRealNode(ctx, "real-node-1")
	if err != nil {
		return err
	}
	d.say("node %s Ready in %s: the kubelet %s and containerd, address %s, tainted %s", node.Name,
		time.Since(start).Round(100*time.Millisecond), testenv.KubeVersion, node.IP, testenv.RealNodeTaint.Key)
	g, err := node.StartGlusterd(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(d.out, "      glusterd logs:\n%s\n", indent(g.Log(), "        "))
			fmt.Fprintf(d.out, "      real node logs:\n%s\n", indent(node.Logs(), "        "))
		}
		if cerr := g.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close glusterd: %w", cerr)
		}
	}()
	// The topology's storage hosts, where heketi's volumes live: glusterd
	// answers on them inside the node's network namespace.
	hosts, err := d.storageHosts(ctx)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if err := g.AddAddress(ctx, h); err != nil {
			return err
		}
	}
	d.say("glusterd runs on the node and answers on the storage hosts %s", strings.Join(hosts, ", "))

	image, err := manifestImage(filepath.Join(d.root, "examples/csi/50-node-daemonset.yaml"))
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    $ make image  # no docker or registry here: the same image from this machine's files, imported into the node's containerd\n")
	im, err := testenv.NewGlusterkubeImage(ctx, image)
	if err != nil {
		return err
	}
	if err := node.ImportImage(ctx, im); err != nil {
		return err
	}
	d.say("%s: glusterkube, the GlusterFS FUSE client, mount", image)
	for _, f := range []string{"00-namespace.yaml", "10-csidriver.yaml", "20-rbac.yaml", "40-mounter-daemonset.yaml", "50-node-daemonset.yaml"} {
		d.apply(ctx, "examples/csi/"+f)
	}
	if err := d.waitCSINode(ctx, node.Name); err != nil {
		return err
	}
	d.say("on %s: the mount service and the node plugin run; the kubelet registered %s", node.Name, csi.DriverName)

	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: helloClaim, Namespace: demoNamespace},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr(helloClass),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	fmt.Fprintf(d.out, "    $ kubectl -n %s create -f - <<< 'claim %s: 1Gi ReadWriteMany, class %s'\n", demoNamespace, helloClaim, helloClass)
	if _, err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		return err
	}
	pv, err := d.waitClaimBound(ctx, helloClaim)
	if err != nil {
		return err
	}
	volume := pv.Spec.CSI.VolumeAttributes[csi.ContextVolume]
	d.say("claim %s Bound to %s: CSI volume %s on %s", helloClaim, pv.Name, volume, pv.Spec.CSI.VolumeAttributes[csi.ContextServers])
	bricks, err := g.CreateHeketiVolume(ctx, volume)
	if err != nil {
		return err
	}
	d.say("heketi's mock executor only recorded %s: made it on the node's glusterd, replica 3 on folder bricks", volume)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: helloPod, Namespace: demoNamespace},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "hello", Image: testenv.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", `set -e
echo "hello from pod $POD on $NODE, written through GlusterFS" > /data/hello.txt
grep " /data " /proc/mounts
cat /data/hello.txt`},
				Env: []corev1.EnvVar{
					{Name: "POD", Value: demoNamespace + "/" + helloPod},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: helloClaim},
			}}},
		},
	}
	node.Pin(&pod.Spec)
	fmt.Fprintf(d.out, "    $ kubectl -n %s create -f - <<< 'pod %s on %s: busybox writes /data/hello.txt, claim %s at /data'\n", demoNamespace, helloPod, node.Name, helloClaim)
	if _, err := d.kube.CoreV1().Pods(demoNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := d.waitPodDone(ctx, helloPod); err != nil {
		return err
	}
	logs, err := d.kube.CoreV1().Pods(demoNamespace).GetLogs(helloPod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("pod logs: %w", err)
	}
	fmt.Fprintf(d.out, "    $ kubectl -n %s logs %s\n%s\n", demoNamespace, helloPod, indent(string(logs), "      "))
	brick := filepath.Join(bricks[0], "hello.txt")
	got, err := os.ReadFile(brick)
	if err != nil {
		return fmt.Errorf("read the brick: %w", err)
	}
	fmt.Fprintf(d.out, "    $ cat %s   # a brick of %s\n", brick, volume)
	d.say("%s", strings.TrimSuffix(string(got), "\n"))
	want := fmt.Sprintf("hello from pod %s/%s on %s, written through GlusterFS\n", demoNamespace, helloPod, node.Name)
	if string(got) != want {
		return fmt.Errorf("brick %s holds %q, want %q", brick, got, want)
	}
	d.say("the line is on the brick: %d bytes, written by the pod on %s", len(got), node.Name)

	// The pod goes first: the kubelet unpublishes its volume, the node
	// plugin has the mount service unmount it.
	if err := d.kube.CoreV1().Pods(demoNamespace).Delete(ctx, helloPod, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := d.waitPodGone(ctx, helloPod); err != nil {
		return err
	}
	// A pod that ran to the end is deleted at once; the kubelet tears its
	// volumes down after.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if !slices.ContainsFunc(node.Mounts("", ""), func(m string) bool { return strings.Contains(m, pv.Name) }) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s deleted a minute ago, but %s is still mounted on %s", helloPod, pv.Name, node.Name)
		}
	}
	d.say("pod %s deleted: the kubelet unpublished %s, nothing of it is mounted on %s", helloPod, pv.Name, node.Name)
	if err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).Delete(ctx, helloClaim, metav1.DeleteOptions{}); err != nil {
		return err
	}
	return nil
}

// waitPodGone watches a pod of the demo namespace until it is deleted.
func (d *demo) waitPodGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(d.kube.CoreV1().RESTClient(), "pods", demoNamespace, fields.OneTermEqualSelector("metadata.name", name))
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(s cache.Store) (bool, error) {
		return len(s.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil })
	if err != nil {
		return fmt.Errorf("pod %s not deleted: %w", name, err)
	}
	return nil
}

// storageHosts returns the storage hosts of heketi's nodes.
func (d *demo) storageHosts(ctx context.Context) ([]string, error) {
	topo, err := d.hk.TopologyInfo(ctx)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, c := range topo.ClusterList {
		for _, n := range c.Nodes {
			hosts = append(hosts, n.Hostnames.Storage...)
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("heketi has no storage hosts")
	}
	return hosts, nil
}

// manifestImage returns the image of the DaemonSet in file.
func manifestImage(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	objs, err := manifest.Decode(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	for _, u := range objs {
		if u.GetKind() != "DaemonSet" {
			continue
		}
		var ds appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ds); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return ds.Spec.Template.Spec.Containers[0].Image, nil
	}
	return "", fmt.Errorf("%s holds no DaemonSet", file)
}

// waitCSINode waits until the CSI DaemonSets' pods on node are ready and
// the kubelet lists the driver in the node's CSINode.
func (d *demo) waitCSINode(ctx context.Context, node string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var last error
	for {
		last = d.csiNodeReady(ctx, node)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the CSI driver on %s: %w", node, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *demo) csiNodeReady(ctx context.Context, node string) error {
	pods, err := d.kube.CoreV1().Pods("glusterkube").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return err
	}
	ready := map[string]bool{}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			ready[p.Labels["app.kubernetes.io/name"]] = c.Ready
		}
	}
	for _, name := range []string{"glusterkube-mounter", "glusterkube-csi-node"} {
		if !ready[name] {
			return fmt.Errorf("%s not ready on the node", name)
		}
	}
	cn, err := d.kube.StorageV1().CSINodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, dr := range cn.Spec.Drivers {
		if dr.Name == csi.DriverName {
			return nil
		}
	}
	return fmt.Errorf("the kubelet has not registered %s yet", csi.DriverName)
}

// waitClaimBound watches a claim of the demo namespace until it is Bound
// and returns its PV.
func (d *demo) waitClaimBound(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(d.kube.CoreV1().RESTClient(), "persistentvolumeclaims", demoNamespace, fields.OneTermEqualSelector("metadata.name", name))
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.PersistentVolumeClaim{}, nil, func(ev watch.Event) (bool, error) {
		c, ok := ev.Object.(*corev1.PersistentVolumeClaim)
		return ok && c.Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %s not Bound: %w", name, err)
	}
	pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, ev.Object.(*corev1.PersistentVolumeClaim).Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if pv.Spec.CSI == nil {
		return nil, fmt.Errorf("PV %s has no CSI source", pv.Name)
	}
	return pv, nil
}

// waitPodDone watches a pod of the demo namespace until it has run to the
// end, and fails unless it succeeded.
func (d *demo) waitPodDone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(d.kube.CoreV1().RESTClient(), "pods", demoNamespace, fields.OneTermEqualSelector("metadata.name", name))
	var last *corev1.Pod
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if ok {
			last = p
		}
		return ok && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed), nil
	})
	if err != nil {
		if last != nil {
			return fmt.Errorf("pod %s: %w (phase %s, %+v)", name, err, last.Status.Phase, last.Status.ContainerStatuses)
		}
		return fmt.Errorf("pod %s: %w", name, err)
	}
	if last.Status.Phase != corev1.PodSucceeded {
		return fmt.Errorf("pod %s %s: %+v", name, last.Status.Phase, last.Status.ContainerStatuses)
	}
	return nil
}

func ptr(s string) *string { return &s }
