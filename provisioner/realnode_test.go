package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// seedScript is what each pod of the seeds' StatefulSet runs ($1 is its
// volume): the first time, it writes its hostname and that file's
// checksum; when the volume already has them (the pod was recreated), it
// checks the checksum (sha256sum -c fails the container on a mismatch)
// and says what it read back. Then it writes a heartbeat every second;
// under `set -e` a write that fails (a dead mount) ends the container, so
// a restart count of 0 says every write worked.
const seedScript = `set -eu
cd "$1"
if [ -e hostname ]; then
	sha256sum -c checksum
	echo "$(hostname) read back $(cat hostname)" | tee -a readback
else
	hostname > hostname
	sha256sum hostname > checksum
	echo "$(hostname) wrote $(cat hostname)"
fi
i=0
while true; do
	i=$((i + 1))
	echo "$(hostname) $i" > beat
	sleep 1
done
`

// seedStatefulSet is the seeds' StatefulSet (examples/provisioner/
// 50-statefulset.yaml) on the real node: two replicas, its claims on
// class, busybox running seedScript on the volume in place of the web
// server, and a 1s grace period (busybox's sh, PID 1, ignores SIGTERM).
func seedStatefulSet(t *testing.T, node *testenv.RealNode, class string) (*v1.Service, *appsv1.StatefulSet) {
	t.Helper()
	svc, sts := &v1.Service{}, &appsv1.StatefulSet{}
	testenv.DecodeManifestFile(t, filepath.Join(examplesDir, "50-statefulset.yaml"), map[string]runtime.Object{
		"Service/springboot-web-svc": svc, "StatefulSet/springboot-web": sts,
	})
	if sts.Name == "" || svc.Name == "" {
		t.Fatal("examples/provisioner/50-statefulset.yaml lacks the springboot-web StatefulSet or its Service")
	}
	replicas := int32(2)
	grace := int64(1)
	sts.Spec.Replicas = &replicas
	sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = &class
	spec := &sts.Spec.Template.Spec
	spec.TerminationGracePeriodSeconds = &grace
	c := &spec.Containers[0]
	c.Image, c.ImagePullPolicy = testenv.BusyboxImage, v1.PullNever
	c.Command = []string{"/bin/sh", "-c", seedScript, "seed", c.VolumeMounts[0].MountPath}
	node.Pin(spec)
	return svc, sts
}

// TestRealNodeProvisionedVolumes follows what a user of glusterkube does,
// on a real node (kubelet + containerd) that is also the GlusterFS
// storage node: the CSI node plugin and the mount service run as the
// examples' DaemonSets; the built-in provisioner makes CSI PVs on the
// test's heketi server (whose volumes the harness makes on the node's
// glusterd, see testenv.GlusterdHeketi); the seeds' StatefulSet runs on it.
//
//   - each pod's hostname and checksum files are on the bricks of its own
//     heketi volume;
//   - the node plugin's container is killed (SIGKILL, as an OOM kill or a
//     crash does; its PID namespace goes with it) and the kubelet restarts
//     it: the pods' mounts, which live in the mount service, never stop
//     working, new writes reach the bricks, and the kubelet's volume stats
//     (NodeGetVolumeStats through the new plugin) come back;
//   - a pod deleted and recreated reads its own file back, checksum intact;
//   - the PV's GID annotation reaches a non-root pod as a supplemental
//     group that lets it write; the same volume under a PV without the
//     annotation does not;
//   - scaled down and its claims deleted, the Delete class's heketi (and
//     GlusterFS) volumes are gone; the Retain class's is kept.
func TestRealNodeProvisionedVolumes(t *testing.T) {
	env := testenv.Get(t)
	start := time.Now()
	s := env.NewStorageNode(t, testenv.StorageNodeOptions{})
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s.InstallCSINode(ctx, t, ns)
	r := startProvisionerWith(t, env, provName(ns), heketi.Config{URL: s.Heketi.URL}, func(c *Config) { c.Dial = storageDial(s) }, provOptions{logs: true})
	kube := env.Client
	deleteClass, retainClass := ns+"-delete", ns+"-retain"
	createClass(t, kube, storageClass(deleteClass, r.name, v1.PersistentVolumeReclaimDelete, map[string]string{
		"clusterid": s.Cluster, "volumetype": "replicate:3", "gidMin": "40000", "gidMax": "40999",
	}))
	createClass(t, kube, storageClass(retainClass, r.name, v1.PersistentVolumeReclaimRetain, map[string]string{
		"clusterid": s.Cluster, "volumetype": "replicate:3", "gidMin": "41000", "gidMax": "41999",
	}))
	// PVs of this test that a failure leaves behind (Retain, or Delete
	// ones whose claims were not deleted).
	t.Cleanup(func() {
		pvs, err := kube.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, pv := range pvs.Items {
			if pv.Spec.StorageClassName == deleteClass || pv.Spec.StorageClassName == retainClass || strings.HasPrefix(pv.Name, ns) {
				_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("StatefulSet pods:\n%s", s.PodLogs(ns, "app=springboot-web"))
			t.Logf("glusterd:\n%s", s.Glusterd.Log())
		}
	})
	t.Logf("real storage node, heketi, CSI DaemonSets and provisioner ready in %s", time.Since(start).Round(time.Millisecond))

	svc, sts := seedStatefulSet(t, s.Node, deleteClass)
	if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := []string{sts.Name + "-0", sts.Name + "-1"}
	claim := func(pod string) string { return sts.Spec.VolumeClaimTemplates[0].Name + "-" + pod }
	// The GlusterFS volume behind each pod's claim, and its bricks.
	volumes := map[string]string{}
	bricksOf := func(pod string) []string { return s.VolumeBricks(volumes[pod]) }

	ok := t.Run("each pod's files are on the bricks of its own heketi volume", func(t *testing.T) {
		start := time.Now()
		pvs := waitBound(t, kube, ns, []string{claim(pods[0]), claim(pods[1])}, 3*time.Minute)
		for _, pod := range pods {
			pv := pvs[claim(pod)]
			if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != csi.DriverName || pv.Annotations[AnnGID] == "" {
				t.Fatalf("PV %s: source %+v annotations %v, want a CSI PV of %s with a GID", pv.Name, pv.Spec.PersistentVolumeSource, pv.Annotations, csi.DriverName)
			}
			volumes[pod] = pv.Annotations[AnnHeketiVolumeName]
			if len(bricksOf(pod)) != 3 {
				t.Fatalf("heketi volume %s of PV %s: bricks %v, want the 3 the harness made", volumes[pod], pv.Name, bricksOf(pod))
			}
		}
		if volumes[pods[0]] == volumes[pods[1]] {
			t.Fatalf("both pods on heketi volume %s", volumes[pods[0]])
		}
		for _, pod := range pods {
			want := map[string]string{
				"hostname": pod + "\n",
				"checksum": fmt.Sprintf("%x  hostname\n", sha256.Sum256([]byte(pod+"\n"))),
			}
			eventually(t, 3*time.Minute, pod+"'s files on its bricks", func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
				if err == nil && p.Status.Phase != v1.PodPending && p.Status.Phase != v1.PodRunning {
					t.Fatalf("pod %s is %s", pod, p.Status.Phase)
				}
				for _, b := range bricksOf(pod) {
					for f, data := range want {
						got, err := os.ReadFile(filepath.Join(b, f))
						if err != nil || string(got) != data {
							return false, fmt.Errorf("%s/%s: %q, %v", b, f, got, err)
						}
					}
				}
				return true, nil
			})
			p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil || p.Spec.NodeName != s.Node.Name {
				t.Fatalf("pod %s on node %q (%v), want the real node %s", pod, p.Spec.NodeName, err, s.Node.Name)
			}
		}
		t.Logf("claims Bound, pods running, files on the bricks in %s", time.Since(start).Round(time.Millisecond))
	})
	if !ok {
		return
	}

	ok = t.Run("the node plugin killed and restarted under running pods", func(t *testing.T) {
		plugin := onlyPod(ctx, t, kube, ns, "app.kubernetes.io/name=glusterkube-csi-node")
		mounter := onlyPod(ctx, t, kube, ns, "app.kubernetes.io/name=glusterkube-mounter")
		restarts := plugin.Status.ContainerStatuses[0].RestartCount
		id, found := strings.CutPrefix(plugin.Status.ContainerStatuses[0].ContainerID, "containerd://")
		if !found {
			t.Fatalf("node plugin container id %q", plugin.Status.ContainerStatuses[0].ContainerID)
		}
		ctr, err := testenv.Binary(ctx, "ctr")
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if out, err := s.Node.Run(ctx, ctr, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			t.Fatalf("kill the node plugin's container: %v: %s", err, out)
		}
		eventually(t, 2*time.Minute, "the kubelet restarted the node plugin", func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, plugin.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			c := p.Status.ContainerStatuses[0]
			return c.RestartCount > restarts && c.Ready && c.State.Running != nil, nil
		})
		eventually(t, time.Minute, "the new node plugin registered with the kubelet", func(ctx context.Context) (bool, error) {
			logs, err := kube.CoreV1().Pods(ns).GetLogs(plugin.Name, &v1.PodLogOptions{Container: "node"}).DoRaw(ctx)
			return strings.Contains(string(logs), "Registered with the kubelet"), err
		})
		up := time.Now()
		t.Logf("node plugin killed, restarted and registered again in %s", up.Sub(killed).Round(time.Millisecond))

		// New writes from both pods reach the bricks after the restart.
		for _, pod := range pods {
			var first int
			eventually(t, time.Minute, pod+"'s heartbeat on its bricks", func(context.Context) (bool, error) {
				n, err := readBeat(bricksOf(pod))
				first = n
				return err == nil, err
			})
			eventually(t, time.Minute, pod+"'s new writes on its bricks", func(context.Context) (bool, error) {
				n, err := readBeat(bricksOf(pod))
				return err == nil && n >= first+3, err
			})
		}
		// No write ever failed (the script would have ended the container)
		// and the mount service was never restarted.
		for _, pod := range pods {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c := p.Status.ContainerStatuses[0]; c.RestartCount != 0 || c.State.Running == nil {
				t.Errorf("pod %s: container restarts %d, state %+v: a write through its mount failed", pod, c.RestartCount, c.State)
			}
		}
		if p, err := kube.CoreV1().Pods(ns).Get(ctx, mounter.Name, metav1.GetOptions{}); err != nil || p.Status.ContainerStatuses[0].RestartCount != mounter.Status.ContainerStatuses[0].RestartCount {
			t.Errorf("the mount service restarted too (%v)", err)
		}

		// What the kubelet sees: its volume stats, which for a CSI volume
		// are a NodeGetVolumeStats call, are fresh again after the restart.
		var stats map[string]statsapi.VolumeStats
		var last error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			if stats, last = volumeStats(ctx, kube, s.Node.Name, ns); last == nil {
				for _, pod := range pods {
					v, found := stats[claim(pod)]
					if !found || !v.Time.After(up) || v.CapacityBytes == nil || *v.CapacityBytes == 0 || v.Inodes == nil || *v.Inodes == 0 {
						last = fmt.Errorf("claim %s: %+v (found %v)", claim(pod), v, found)
						break
					}
				}
			}
			if last == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the kubelet's volume stats of both claims, taken after the restart: not within a minute: %v", last)
			}
		}
		for _, pod := range pods {
			v := stats[claim(pod)]
			t.Logf("kubelet volume stats of %s at %s: capacity %d, used %d, inodes %d", claim(pod), v.Time.Format(time.RFC3339), *v.CapacityBytes, *v.UsedBytes, *v.Inodes)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("a deleted pod, recreated, reads its own file back", func(t *testing.T) {
		start := time.Now()
		pod := pods[0]
		old, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := kube.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		want := pod + " read back " + pod
		eventually(t, 3*time.Minute, "the recreated "+pod+" read its file back", func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil || p.UID == old.UID || p.Status.Phase != v1.PodRunning {
				return false, err
			}
			logs, err := kube.CoreV1().Pods(ns).GetLogs(pod, &v1.PodLogOptions{}).DoRaw(ctx)
			return strings.Contains(string(logs), "hostname: OK") && strings.Contains(string(logs), want), err
		})
		// tee may print before its write reaches every brick.
		eventually(t, 30*time.Second, "the read-back line on "+pod+"'s bricks", func(context.Context) (bool, error) {
			for _, b := range bricksOf(pod) {
				got, err := os.ReadFile(filepath.Join(b, "readback"))
				if err != nil || string(got) != want+"\n" {
					return false, fmt.Errorf("%s/readback: %q, %v", b, got, err)
				}
			}
			return true, nil
		})
		t.Logf("pod deleted, recreated and its data read back in %s", time.Since(start).Round(time.Millisecond))
	})
	if !ok {
		return
	}

	var retained *v1.PersistentVolume
	ok = t.Run("the PV's GID lets a non-root pod write", func(t *testing.T) {
		start := time.Now()
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "shared", retainClass, "1Gi", v1.ReadWriteMany), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		retained = waitBound(t, kube, ns, []string{"shared"}, 2*time.Minute)["shared"]
		gid := retained.Annotations[AnnGID]
		// The control: the same GlusterFS volume through a PV without the
		// annotation (what an administrator's static PV would be), under a
		// handle of its own so that the kubelet takes it for another
		// volume (it keys CSI volumes by driver and handle).
		static := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-shared-nogid"},
			Spec: v1.PersistentVolumeSpec{
				Capacity:                      retained.Spec.Capacity,
				AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
				PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
				ClaimRef:                      &v1.ObjectReference{Namespace: ns, Name: "shared-nogid"},
				PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: retained.Spec.CSI.DeepCopy()},
			},
		}
		static.Spec.CSI.VolumeHandle += "-nogid"
		if _, err := kube.CoreV1().PersistentVolumes().Create(ctx, static, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		noClass := ""
		nogid := newClaim(ns, "shared-nogid", noClass, "1Gi", v1.ReadWriteMany)
		nogid.Spec.VolumeName = static.Name
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, nogid, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for pod, claim := range map[string]string{"in-group": "shared", "outsider": "shared-nogid"} {
			if _, err := kube.CoreV1().Pods(ns).Create(ctx, nonRootWriter(s.Node, pod, claim), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		logs := map[string]string{}
		for _, pod := range []string{"in-group", "outsider"} {
			eventually(t, 3*time.Minute, "pod "+pod+" done", func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
				if err != nil || (p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed) {
					return false, err
				}
				if p.Status.Phase != v1.PodSucceeded {
					t.Fatalf("pod %s %s: %+v", pod, p.Status.Phase, p.Status.ContainerStatuses)
				}
				b, err := kube.CoreV1().Pods(ns).GetLogs(pod, &v1.PodLogOptions{}).DoRaw(ctx)
				logs[pod] = string(b)
				return err == nil, err
			})
			t.Logf("%s (PV GID %s):\n%s", pod, gid, logs[pod])
		}
		if !strings.Contains(logs["in-group"], "WROTE") || !hasGroup(logs["in-group"], gid) {
			t.Errorf("the pod with PV %s (GID %s) could not write, or lacks the group:\n%s", retained.Name, gid, logs["in-group"])
		}
		if !strings.Contains(logs["outsider"], "DENIED") || hasGroup(logs["outsider"], gid) {
			t.Errorf("the pod whose PV has no GID could write, or has the group:\n%s", logs["outsider"])
		}
		for _, b := range s.VolumeBricks(retained.Annotations[AnnHeketiVolumeName]) {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(b, "in-group"), &st); err != nil {
				t.Errorf("brick %s: %v", b, err)
			} else if st.Uid != 1000 || strconv.Itoa(int(st.Gid)) != gid {
				t.Errorf("brick %s: in-group's file is %d:%d, want 1000:%s (the brick root is setgid)", b, st.Uid, st.Gid, gid)
			}
			if _, err := os.Stat(filepath.Join(b, "outsider")); !os.IsNotExist(err) {
				t.Errorf("brick %s holds the outsider's file (%v)", b, err)
			}
		}
		for _, pod := range []string{"in-group", "outsider"} {
			if err := kube.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
		}
		t.Logf("GID pods done in %s", time.Since(start).Round(time.Millisecond))
	})
	if !ok {
		return
	}

	t.Run("scaled down and claims deleted: Delete removes the heketi volumes, Retain keeps its own", func(t *testing.T) {
		start := time.Now()
		scale, err := kube.AppsV1().StatefulSets(ns).GetScale(ctx, sts.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		scale.Spec.Replicas = 0
		if _, err := kube.AppsV1().StatefulSets(ns).UpdateScale(ctx, sts.Name, scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Minute, "the StatefulSet's pods gone", func(ctx context.Context) (bool, error) {
			l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=springboot-web"})
			return err == nil && len(l.Items) == 0, err
		})
		ids := map[string]string{}
		for _, pod := range pods {
			c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim(pod), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ids[pod] = pv.Annotations[AnnHeketiVolumeID]
			if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, claim(pod), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"shared", "shared-nogid"} {
			if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, pod := range pods {
			eventually(t, 2*time.Minute, "heketi volume "+ids[pod]+" deleted", func(ctx context.Context) (bool, error) {
				_, err := s.Admin.VolumeInfo(ctx, ids[pod])
				if err == nil || !heketi.IsNotFound(err) {
					return false, err
				}
				return !s.Glusterd.HasVolume(ctx, volumes[pod]), nil
			})
		}
		// Unmounted: no GlusterFS mount is left on the node (the GID test's
		// pods ran to the end, so the API server deleted them at once and
		// the kubelet tears their volumes down after).
		eventually(t, time.Minute, "no GlusterFS mount left on the node", func(ctx context.Context) (bool, error) {
			if m := s.Node.Mounts("", "fuse.glusterfs"); len(m) > 0 {
				return false, fmt.Errorf("mounts left: %v", m)
			}
			return true, nil
		})
		eventually(t, time.Minute, "the Retain PV Released", func(ctx context.Context) (bool, error) {
			pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, retained.Name, metav1.GetOptions{})
			return err == nil && pv.Status.Phase == v1.VolumeReleased, err
		})
		eventually(t, time.Minute, "the provision library skipped the Released PV", func(context.Context) (bool, error) {
			return r.logs.has("shouldDelete is false: volume does not have Delete reclaim policy", retained.Name), nil
		})
		id, name := retained.Annotations[AnnHeketiVolumeID], retained.Annotations[AnnHeketiVolumeName]
		if _, err := s.Admin.VolumeInfo(ctx, id); err != nil {
			t.Errorf("the Retain class's heketi volume %s: %v", id, err)
		}
		if !s.Glusterd.HasVolume(ctx, name) {
			t.Errorf("the Retain class's GlusterFS volume %s is gone", name)
		}
		if _, err := kube.CoreV1().PersistentVolumes().Get(ctx, retained.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("the Retain PV: %v", err)
		}
		t.Logf("scale down, claims deleted, volumes removed in %s", time.Since(start).Round(time.Millisecond))
	})
}

// nonRootWriter is a pod that runs as uid and gid 1000 (no fsGroup), says
// who it is, and tries to write a file named after itself on the volume
// of claim: WROTE or DENIED.
func nonRootWriter(node *testenv.RealNode, name, claim string) *v1.Pod {
	uid, grace := int64(1000), int64(1)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			RestartPolicy:                 v1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext:               &v1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid},
			Containers: []v1.Container{{
				Name: "main", Image: testenv.BusyboxImage, ImagePullPolicy: v1.PullNever,
				Command:      []string{"/bin/sh", "-c", `id; ls -ldn /data; if echo "by $(id -u)" > "/data/$(hostname)"; then echo WROTE; else echo DENIED; fi`},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
	node.Pin(&pod.Spec)
	return pod
}

// hasGroup reports whether `id` output in logs lists gid among the groups.
func hasGroup(logs, gid string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if _, groups, ok := strings.Cut(line, "groups="); ok {
			for _, g := range strings.Split(groups, ",") {
				if g == gid || strings.HasPrefix(g, gid+"(") {
					return true
				}
			}
		}
	}
	return false
}

// readBeat returns the lowest heartbeat count seedScript wrote on the
// bricks ("<hostname> <n>").
func readBeat(bricks []string) (int, error) {
	low := -1
	for _, b := range bricks {
		data, err := os.ReadFile(filepath.Join(b, "beat"))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(data))
		if len(f) != 2 {
			return 0, fmt.Errorf("%s/beat: %q", b, data)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, fmt.Errorf("%s/beat: %q", b, data)
		}
		if low < 0 || n < low {
			low = n
		}
	}
	if low < 0 {
		return 0, fmt.Errorf("no bricks")
	}
	return low, nil
}

// onlyPod returns the one pod in ns matching selector.
func onlyPod(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, selector string) *v1.Pod {
	t.Helper()
	l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || len(l.Items[0].Status.ContainerStatuses) != 1 {
		t.Fatalf("pods %s: %d, want one with one container", selector, len(l.Items))
	}
	return &l.Items[0]
}

// volumeStats returns the kubelet's stats of the PVC volumes of pods in
// ns by claim name, from its /stats/summary through the API server.
func volumeStats(ctx context.Context, kube kubernetes.Interface, node, ns string) (map[string]statsapi.VolumeStats, error) {
	res := kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		var code int
		res.StatusCode(&code)
		return nil, fmt.Errorf("kubelet /stats/summary: %w (%d: %.1000s)", err, code, raw)
	}
	var sum statsapi.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, fmt.Errorf("kubelet /stats/summary: %w", err)
	}
	out := map[string]statsapi.VolumeStats{}
	if len(sum.Pods) == 0 {
		return nil, fmt.Errorf("kubelet /stats/summary lists no pods: %.2000s", raw)
	}
	for _, p := range sum.Pods {
		for _, v := range p.VolumeStats {
			if p.PodRef.Namespace == ns && v.PVCRef != nil {
				out[v.PVCRef.Name] = v
			}
		}
	}
	return out, nil
}
