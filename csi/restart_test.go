package csi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/mounter"
)

// fuseClient returns the pid of the FUSE client of target: of its
// processes, the one holding /dev/fuse (the other is its auto_unmount
// watcher).
func fuseClient(t testing.TB, target string) int {
	t.Helper()
	for _, pid := range clientProcs(target) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == "/dev/fuse" {
				return pid
			}
		}
	}
	t.Fatalf("no FUSE client holds /dev/fuse for %s (processes %v)", target, clientProcs(target))
	return 0
}

func health(ctx context.Context, t testing.TB, n *node, volumeID, target string) []*csipb.VolumeHealth_VolumeHealthEntry {
	t.Helper()
	resp, err := n.Node.NodeGetVolumeHealth(ctx, &csipb.NodeGetVolumeHealthRequest{VolumeId: volumeID, VolumePublishPath: target})
	if err != nil {
		t.Fatalf("NodeGetVolumeHealth: %v", err)
	}
	return resp.GetVolumeHealth().GetHealthStatuses()
}

// eventually polls f every 100 ms until it is true, or fails the test.
func eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRealMountKilledClientHealed kills the FUSE client under a published
// target, the two ways it dies: alone (its auto_unmount watcher then
// unmounts the target) and with its watcher (the container's processes are
// all killed: the mount stays, dead). Either way the volume's health says
// INACCESSIBLE with what happened, stats fail, and the target is healed —
// in the background after a health or stats call, or by a publish.
func TestRealMountKilledClientHealed(t *testing.T) {
	g := testenv.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := g.CreateHeketiVolume(ctx, "heal"); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, g)
	n.startPlugin()

	tests := []struct {
		name       string
		kill       func(t *testing.T, target string)
		wantReason string
		heal       func(t *testing.T, req *csipb.NodePublishVolumeRequest)
	}{
		{
			name:       "client alone, healed in the background after a health call",
			kill:       func(t *testing.T, target string) { _ = syscall.Kill(fuseClient(t, target), syscall.SIGKILL) },
			wantReason: "NotMounted",
			heal:       func(*testing.T, *csipb.NodePublishVolumeRequest) {}, // the health call started it
		},
		{
			name: "client and watcher, healed by a publish (or after the stats call)",
			kill: func(t *testing.T, target string) {
				// The watcher first, so nobody unmounts the dead mount.
				client := fuseClient(t, target)
				for _, pid := range clientProcs(target) {
					if pid != client {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				_ = syscall.Kill(client, syscall.SIGKILL)
			},
			wantReason: "FUSEClientExited",
			heal:       func(t *testing.T, req *csipb.NodePublishVolumeRequest) { n.publish(t, ctx, req) },
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("heal-%d", i)
			target := n.target("pod-"+id, "pv-"+id)
			req := publishRequest(id, "heal", "127.0.0.1", target)
			n.publish(t, ctx, req)
			if err := os.WriteFile(filepath.Join(target, id), []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.kill(t, target)
			waitNoClient(t, target)
			eventually(t, 10*time.Second, "the dead mount to be seen", func() bool {
				_, err := os.Stat(filepath.Join(target, id))
				return err != nil && (tc.wantReason != "NotMounted" || len(mountsUnder(target)) == 0)
			})
			// The first call that sees the dead mount says what is wrong
			// (and starts healing it in the background).
			if tc.wantReason == "FUSEClientExited" {
				_, err := n.Node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
				if err == nil || !strings.Contains(err.Error(), "transport endpoint is not connected") {
					t.Errorf("stats of a dead mount: %v, want an error saying so", err)
				}
				t.Logf("stats: %v", err)
			} else {
				got := health(ctx, t, n, id, target)
				if len(got) != 1 || got[0].GetStatus() != csipb.VolumeHealthErrorType_INACCESSIBLE || got[0].GetReason() != tc.wantReason {
					t.Fatalf("health after the kill: %v, want INACCESSIBLE %s", got, tc.wantReason)
				}
				t.Logf("health: %s: %s", got[0].GetReason(), got[0].GetMessage())
			}
			tc.heal(t, req)
			eventually(t, 30*time.Second, "the target healed", func() bool {
				b, err := os.ReadFile(filepath.Join(target, id))
				return err == nil && string(b) == "kept"
			})
			if got := health(ctx, t, n, id, target); len(got) != 0 {
				t.Errorf("health after healing: %v", got)
			}
			n.unpublish(t, ctx, id, target)
			waitNoClient(t, target)
		})
	}
}

// TestPluginRestart proves what a node plugin restart does to running
// pods, the way it happens in a cluster: the plugin runs in a PID
// namespace of its own (killing it kills what it started), and a "pod"
// process in a mount namespace of its own bind-mounted the published
// target before, as a container runtime does.
//
// With the mount service, the FUSE client lives in the service's PID
// namespace: the pod reads and writes through the plugin's death and
// restart. Without it, the client dies with the plugin: the pod gets
// ENOTCONN; the restarted plugin heals the target from its publish record
// and raises a Warning Event on the pod saying it must be recreated — a
// new pod (a new bind mount) sees the volume, the old one never will.
func TestPluginRestart(t *testing.T) {
	env := testenv.Get(t)
	for _, withService := range []bool{true, false} {
		name := map[bool]string{true: "with mount service", false: "without mount service"}[withService]
		t.Run(name, func(t *testing.T) {
			g := testenv.NewGlusterd(t)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			bricks, err := g.CreateHeketiVolume(ctx, "restart")
			if err != nil {
				t.Fatal(err)
			}
			ns := env.Namespace(t)
			kpod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := newNode(t, g)
			n.kubeconfig = nsKubeconfig(t, env, g, n.dir)
			if withService {
				n.startMounter()
			}
			n.startPlugin()

			target := n.target(string(kpod.UID), "pv-restart")
			req := publishRequest("restart-id", "restart", "127.0.0.1,127.0.0.2", target)
			req.VolumeContext["csi.storage.k8s.io/pod.name"] = kpod.Name
			req.VolumeContext["csi.storage.k8s.io/pod.namespace"] = ns
			req.VolumeContext["csi.storage.k8s.io/pod.uid"] = string(kpod.UID)
			n.publish(t, ctx, req)
			p := startPod(t, n.dir, "app", target)
			if err := p.write("before", "before the restart\n"); err != nil {
				t.Fatal(err)
			}

			n.plugin.Kill()
			if _, err := os.Stat(n.socket()); err == nil {
				// A killed plugin leaves its socket; the next one replaces it.
				t.Logf("the killed plugin left its socket, as expected")
			}

			if withService {
				if got, err := p.read("before"); err != nil || got != "before the restart\n" {
					t.Fatalf("pod reads %q, %v after the plugin was killed", got, err)
				}
				if err := p.write("during", "while the plugin is down\n"); err != nil {
					t.Fatalf("pod writes while the plugin is down: %v", err)
				}
				n.startPlugin()
				n.publish(t, ctx, req) // the kubelet may publish again: a no-op
				if got := health(ctx, t, n, "restart-id", target); len(got) != 0 {
					t.Errorf("health after the restart: %v", got)
				}
				if err := p.write("after", "after the restart\n"); err != nil {
					t.Fatalf("pod writes after the restart: %v", err)
				}
				for _, b := range bricks {
					for _, f := range []string{"before", "during", "after"} {
						if _, err := os.Stat(filepath.Join(b, f)); err != nil {
							t.Errorf("brick %s: %v", b, err)
						}
					}
				}
				if m := mountsUnder(target); len(m) != 1 {
					t.Errorf("mounts at the target after the restart: %v, want 1", m)
				}
			} else {
				waitNoClient(t, target)
				if _, err := p.read("before"); !mounter.ClientGone(err) {
					t.Fatalf("pod read after the plugin died: %v, want ENOTCONN or ECONNABORTED (the FUSE client died with the plugin)", err)
				}
				n.startPlugin()
				// Healed from the publish record on start.
				eventually(t, 30*time.Second, "the target healed by the restarted plugin", func() bool {
					b, err := os.ReadFile(filepath.Join(target, "before"))
					return err == nil && string(b) == "before the restart\n"
				})
				if _, err := p.read("before"); !mounter.ClientGone(err) {
					t.Errorf("old pod read after healing: %v, want ENOTCONN or ECONNABORTED still (its bind mount is private)", err)
				}
				p2 := startPod(t, n.dir, "app-recreated", target)
				if got, err := p2.read("before"); err != nil || got != "before the restart\n" {
					t.Errorf("recreated pod reads %q, %v", got, err)
				}
				var ev *corev1.Event
				eventually(t, 30*time.Second, "a Warning Event on the pod", func() bool {
					l, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", kpod.Name).String()})
					if err != nil {
						return false
					}
					for i := range l.Items {
						if l.Items[i].Reason == csi.ReasonMountHealed {
							ev = &l.Items[i]
							return true
						}
					}
					return false
				})
				t.Logf("event: %s %s: %s", ev.Type, ev.Reason, ev.Message)
				if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.UID != kpod.UID || !strings.Contains(ev.Message, "recreate the pod") {
					t.Errorf("event %+v", ev)
				}
				p2.p.Kill()
			}
			p.p.Kill() // the pod goes before its volume is unpublished
			n.unpublish(t, ctx, "restart-id", target)
			waitNoClient(t, target)
			// The FUSE clients daemonized under the init of their PID
			// namespace (the mount service, or the plugin): it reaps them.
			owner := n.plugin
			if withService {
				owner = n.mounter
			}
			eventually(t, 10*time.Second, "the exited FUSE clients reaped", func() bool { return len(zombies(owner)) == 0 })
			if m := mountsUnder(n.dir); len(m) != 0 {
				t.Errorf("mounts left: %v", m)
			}
		})
	}
}
