//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/migrate"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/volume"
)

// workloadScript is the workload of the migrated claim ($1 is its
// volume): it says what it reads of the data written before the upgrade
// (the checksum of before.bin, sha256sum -c of the checksum file written
// then, before.txt), writes after.txt, and sleeps. Under `set -e` a read
// that fails or a checksum that differs ends the container.
const workloadScript = `set -eu
cd "$1"
sha256sum before.bin
sha256sum -c before.sha256
echo "before.txt: $(cat before.txt)"
echo "written by $(hostname) after the upgrade" > after.txt
echo "wrote after.txt"
exec sleep 100000
`

// TestRealNodeMigratedVolumeMounts is the upgrade as a user lives it, on
// a real node (kubelet 1.37 + containerd) that is also the GlusterFS
// storage node:
//
//   - before: a GlusterFS volume on the node's glusterd holding data
//     written through a plain FUSE mount, the heketi volume of the same
//     name, and what the in-tree provisioner left for a claim of a Delete
//     class (the PV with the glusterfs source, the glusterfs-dynamic-…
//     Endpoints with the node's storage addresses and the Service), bound;
//   - the workload's pod on the real node does not start: the kubelet has
//     no glusterfs plugin any more, and says so in an Event;
//   - migrate refuses the claim while that (Pending) pod exists, naming
//     it; scaled to zero, `glusterkube migrate apply` (the command) converts
//     the PV;
//   - scaled back up, the pod mounts the converted PV through the CSI
//     node plugin (the examples' DaemonSets), reads the old data back byte
//     for byte, and writes new data that lands on the bricks; the claim
//     named the same PV from start to end, and the heketi volume is the
//     same one;
//   - scaled down and the claim deleted, the restored Delete policy has
//     glusterkube's provisioner delete the heketi volume and the GlusterFS
//     volume.
func TestRealNodeMigratedVolumeMounts(t *testing.T) {
	env := testenv.Get(t)
	start := time.Now()
	s := env.NewStorageNode(t, testenv.StorageNodeOptions{NodeAddresses: true})
	ns, recNS := env.Namespace(t), env.Namespace(t)
	kube := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	migrate.CleanupPVs(t, kube, ns)
	prov := "glusterkube.io/" + ns
	migrate.StartProvisioner(t, env, prov, func(c *provisioner.Config) {
		c.Heketi.URL = s.Heketi.URL
		c.Dial = func(cfg heketi.Config) (volume.Heketi, error) {
			h, err := s.Dial(cfg)
			if err != nil {
				return nil, err
			}
			return h, nil
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("workload pods:\n%s", s.PodLogs(ns, "app=workload"))
		}
	})

	// Before the upgrade: the in-tree provisioner's claim, PV, Endpoints
	// and Service, and a volume heketi made (GlusterdHeketi makes it on
	// the node's glusterd as real heketi did) with data on it.
	class, err := kube.StorageV1().StorageClasses().Create(ctx, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, map[string]string{
		"resturl": s.Heketi.URL, "restauthenabled": "false", "clusterid": s.Cluster,
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	old, err := testenv.MakeInTreeVolume(ctx, kube, s.Wrap(s.Admin), class, testenv.InTreeClaim(ns, "data", class.Name, "1Gi"), 2000)
	if err != nil {
		t.Fatal(err)
	}
	claimUID, pvName := old.Claim.UID, old.PV.Name
	var epIPs []string
	for _, a := range old.Endpoints.Subsets[0].Addresses {
		epIPs = append(epIPs, a.IP)
	}
	if !sameSet(epIPs, s.Hosts) {
		t.Fatalf("Endpoints %s list %v, want the node's storage addresses %v", old.Endpoints.Name, epIPs, s.Hosts)
	}
	bricks := s.VolumeBricks(old.HeketiName)
	if len(bricks) != 3 {
		t.Fatalf("GlusterFS volume %s: bricks %v, want 3", old.HeketiName, bricks)
	}
	oldData := make([]byte, 1<<20)
	if _, err := rand.Read(oldData); err != nil {
		t.Fatal(err)
	}
	oldSum := fmt.Sprintf("%x", sha256.Sum256(oldData))
	oldText := "written by the in-tree era's workload " + string(claimUID)
	writeThroughFUSE(ctx, t, s.Glusterd, old.HeketiName, map[string][]byte{
		"before.bin": oldData, "before.sha256": []byte(oldSum + "  before.bin\n"), "before.txt": []byte(oldText + "\n"),
	})
	for _, b := range bricks {
		if got, err := os.ReadFile(filepath.Join(b, "before.bin")); err != nil || !bytes.Equal(got, oldData) {
			t.Fatalf("brick %s: before.bin not the bytes written (%v)", b, err)
		}
	}
	waitClaimBound(t, kube, ns, "data", pvName)
	// The claim's every state from here to its deletion.
	claimLog := watchClaim(ctx, t, kube, ns, "data")
	idsBefore := heketiVolumeIDs(t, s)
	t.Logf("in-tree PV %s (heketi volume %s, Endpoints %s on %v) bound, 1 MiB written through FUSE, in %s",
		pvName, old.HeketiID, old.Endpoints.Name, epIPs, time.Since(start).Round(time.Millisecond))

	// The upgraded node: the workload's pod does not start.
	mark := time.Now()
	dep := workload(s.Node, ns, "data")
	if dep, err = kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stuck := onlyPod(ctx, t, kube, ns)
	var failed v1.Event
	testenv.Eventually(t, 2*time.Minute, "a Warning Event on the workload's pod", func(ctx context.Context) (bool, error) {
		l, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + stuck.Name})
		if err != nil {
			return false, err
		}
		for _, e := range l.Items {
			if e.Type == v1.EventTypeWarning {
				failed = e
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("before: pod %s on node %s: %s %s (from %s): %s", stuck.Name, stuck.Spec.NodeName, failed.Type, failed.Reason, failed.Source.Component, failed.Message)
	// What the kubelet says of a PV whose source no plugin of its takes.
	want := fmt.Sprintf("failed to get Plugin from volumeSpec for volume %q err=no volume plugin matched", pvName)
	if failed.Reason != "FailedMount" || !strings.Contains(failed.Message, want) {
		t.Fatalf("the Event on pod %s is %s %q, want FailedMount: ...%s", stuck.Name, failed.Reason, failed.Message, want)
	}
	p, err := kube.CoreV1().Pods(ns).Get(ctx, stuck.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != v1.PodPending || p.Spec.NodeName != s.Node.Name {
		t.Fatalf("pod %s: %s on %q, want Pending on %s", stuck.Name, p.Status.Phase, p.Spec.NodeName, s.Node.Name)
	}
	t.Logf("the stuck pod seen in %s", time.Since(mark).Round(time.Millisecond))

	// The CSI node plugin, as step 1 of the README's upgrade has it.
	s.InstallCSINode(ctx, t, ns)

	// migrate refuses the claim while its pod exists, Pending as it is.
	args := []string{"--kubeconfig", env.Kubeconfig, "--heketi-url", s.Heketi.URL, "--record-namespace", recNS, "--provisioner-name", prov, ns + "/data"}
	out, err := runCommand(ctx, append([]string{"migrate", "apply"}, args...)...)
	if err == nil || !strings.Contains(out, "refused") || !strings.Contains(out, ns+"/"+stuck.Name) {
		t.Fatalf("migrate apply with the stuck pod: %v\n%s", err, out)
	}
	if pv := getPV(ctx, t, kube, pvName); pv.Spec.Glusterfs == nil || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
		t.Fatalf("PV %s changed by a refused apply: %+v", pvName, pv.Spec)
	}
	t.Logf("apply with the stuck pod: %v\n%s", err, out)

	// Scaled away, the claim is converted.
	scale(ctx, t, kube, dep, 0)
	applyStart := time.Now()
	out, err = runCommand(ctx, append([]string{"migrate", "apply"}, args...)...)
	applyEnd := time.Now()
	if err != nil || !strings.Contains(out, "converted  PV "+pvName) || !strings.Contains(out, "1 converted") {
		t.Fatalf("migrate apply: %v\n%s", err, out)
	}
	t.Logf("migrate apply in %s:\n%s", applyEnd.Sub(applyStart).Round(time.Millisecond), out)
	waitClaimBound(t, kube, ns, "data", pvName)
	pv := getPV(ctx, t, kube, pvName)
	cs := pv.Spec.CSI
	if cs == nil || cs.Driver != csi.DriverName || cs.VolumeHandle != old.HeketiID || cs.VolumeAttributes[csi.ContextVolume] != old.HeketiName {
		t.Fatalf("PV %s after apply: source %+v, want driver %s, handle %s, volume %s", pvName, pv.Spec.PersistentVolumeSource, csi.DriverName, old.HeketiID, old.HeketiName)
	}
	if servers := strings.Split(cs.VolumeAttributes[csi.ContextServers], ","); !sameSet(servers, s.Hosts) {
		t.Errorf("PV %s servers %v, want the storage hosts %v", pvName, servers, s.Hosts)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claimUID {
		t.Errorf("PV %s: policy %s, claimRef %+v, want Delete bound to claim %s", pvName, pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.ClaimRef, claimUID)
	}
	if _, err := kube.CoreV1().Endpoints(ns).Get(ctx, old.Endpoints.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Endpoints %s: %v, want them deleted", old.Endpoints.Name, err)
	}
	if _, err := kube.CoreV1().Services(ns).Get(ctx, old.Service.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Service %s: %v, want it deleted", old.Service.Name, err)
	}
	if ids := heketiVolumeIDs(t, s); !slices.Equal(ids, idsBefore) {
		t.Errorf("heketi volumes %v after apply, were %v", ids, idsBefore)
	}

	// Scaled back up, the pod mounts it through the node plugin.
	mark = time.Now()
	scale(ctx, t, kube, dep, 1)
	pod := onlyPod(ctx, t, kube, ns)
	var logs string
	testenv.Eventually(t, 3*time.Minute, "the workload read the old data and wrote after.txt", func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount > 0 {
			t.Fatalf("pod %s restarted: the script failed: %+v", pod.Name, p.Status.ContainerStatuses[0].LastTerminationState)
		}
		b, err := kube.CoreV1().Pods(ns).GetLogs(pod.Name, &v1.PodLogOptions{}).DoRaw(ctx)
		logs = string(b)
		return strings.Contains(logs, "wrote after.txt"), err
	})
	t.Logf("after: pod %s on %s in %s:\n%s", pod.Name, s.Node.Name, time.Since(mark).Round(time.Millisecond), logs)
	for _, want := range []string{oldSum + "  before.bin", "before.bin: OK", "before.txt: " + oldText} {
		if !strings.Contains(logs, want) {
			t.Errorf("pod %s did not read back %q:\n%s", pod.Name, want, logs)
		}
	}
	mount := fmt.Sprintf("/var/lib/kubelet/pods/%s/volumes/kubernetes.io~csi/%s/mount", pod.UID, pvName)
	if m := s.Node.Mounts("", "fuse.glusterfs"); !slices.Contains(m, mount) {
		t.Errorf("no GlusterFS mount of the CSI volume at %s on the node; GlusterFS mounts: %v", mount, m)
	}
	newData := "written by " + pod.Name + " after the upgrade\n"
	testenv.Eventually(t, 30*time.Second, "after.txt on every brick", func(context.Context) (bool, error) {
		for _, b := range bricks {
			got, err := os.ReadFile(filepath.Join(b, "after.txt"))
			if err != nil || string(got) != newData {
				return false, fmt.Errorf("%s/after.txt: %q, %v", b, got, err)
			}
		}
		return true, nil
	})
	if ids := heketiVolumeIDs(t, s); !slices.Equal(ids, idsBefore) {
		t.Errorf("heketi volumes %v, were %v", ids, idsBefore)
	}

	// Scaled down and the claim deleted: the Delete policy is back, and
	// glusterkube's provisioner deletes the heketi and GlusterFS volume.
	mark = time.Now()
	scale(ctx, t, kube, dep, 0)
	testenv.Eventually(t, time.Minute, "the kubelet unmounted the volume", func(ctx context.Context) (bool, error) {
		m := s.Node.Mounts("", "fuse.glusterfs")
		return len(m) == 0, fmt.Errorf("GlusterFS mounts left: %v", m)
	})
	states, err := claimLog.stop()
	if err != nil {
		t.Error(err)
	}
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "heketi volume "+old.HeketiID+", GlusterFS volume and PV deleted", func(ctx context.Context) (bool, error) {
		if _, err := s.Admin.VolumeInfo(ctx, old.HeketiID); !heketi.IsNotFound(err) {
			return false, fmt.Errorf("heketi volume: %v", err)
		}
		if s.Glusterd.HasVolume(ctx, old.HeketiName) {
			return false, fmt.Errorf("GlusterFS volume %s still there", old.HeketiName)
		}
		_, err := kube.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	t.Logf("scaled down, claim deleted, heketi and GlusterFS volume gone in %s", time.Since(mark).Round(time.Millisecond))

	// The claim named the same PV all along, and was Bound but while
	// apply ran: between the old PV's delete and the new one's bind the PV
	// controller finds no PV and calls the claim Lost.
	var phases []string
	for _, st := range states {
		if st.uid != claimUID || st.volume != pvName {
			t.Errorf("claim data was %s bound to %q (uid %s), want %q (uid %s)", st.phase, st.volume, st.uid, pvName, claimUID)
		}
		if st.phase != v1.ClaimBound && (st.at.Before(applyStart) || st.at.After(applyEnd)) {
			t.Errorf("claim data %s at %s, outside migrate apply (%s to %s)", st.phase, st.at.Format(time.StampMilli), applyStart.Format(time.StampMilli), applyEnd.Format(time.StampMilli))
		}
		if len(phases) == 0 || phases[len(phases)-1] != string(st.phase) {
			phases = append(phases, string(st.phase))
		}
	}
	if len(states) == 0 || states[len(states)-1].phase != v1.ClaimBound {
		t.Errorf("claim data's states: %+v, want it to end Bound", states)
	}
	t.Logf("claim data: %d states seen, all on PV %s; phases %s", len(states), pvName, strings.Join(phases, " → "))
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
