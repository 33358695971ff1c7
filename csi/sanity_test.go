package csi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// sanitySkips are the reasons csi-sanity gives for the specs it skips
// because the driver does not advertise what they test (no snapshots, no
// controller publish, no staging, no node expansion, no volume attribute
// classes, no health of the controller or the node's storage, no group
// controller). Any other skip fails TestSanity: no spec may be skipped by
// the harness.
var sanitySkips = []string{
	"ControllerPublishVolume not supported",
	"ControllerUnpublishVolume not supported",
	"Controller Publish, UnpublishVolume not supported",
	"ControllerGetVolumeHealth not supported",
	"ControllerListVolumeHealth not supported",
	"ControllerModifyVolume not supported",
	"Modify volume not supported",
	"Modify Volume not supported",
	"CreateSnapshot not supported",
	"DeleteSnapshot not supported",
	"GetSnapshot not supported",
	"ListSnapshots not supported",
	"Snapshot not supported",
	"SNAPSHOT_ACCESSIBILITY_CONSTRAINTS not supported",
	"GroupControllerService not supported",
	"VolumeGroupSnapshots not supported",
	"NodeStageVolume not supported",
	"NodeUnstageVolume not supported",
	"NodeExpandVolume not supported",
	"NodeGetStorageHealth not supported",
}

// TestSanity runs csi-sanity (github.com/kubernetes-csi/csi-test/v5,
// pkg/sanity) against the real `glusterkube csi --services
// controller,node`, started as its DaemonSet container runs: in the test
// glusterd's network namespace (the node's storage network) and a PID
// namespace of its own, with the mount service beside it. The controller
// talks to a real heketi server (auth on; csi-sanity passes the admin key
// as the CSI secrets "user" and "key") whose topology's storage hosts are
// the glusterd's loopback addresses 127.0.0.1-3, so every volume context
// names servers the FUSE client reaches; the mirror (mirror_test.go) makes
// each GlusterFS volume heketi's mock executor only records. The node
// specs thus mount for real. Every spec the advertised capabilities enable
// must pass; a skip for any other reason than a capability the driver
// does not advertise fails the test. Afterwards nothing is left: no heketi
// volume, no GlusterFS volume, no mount.
func TestSanity(t *testing.T) {
	g := testenv.NewGlusterd(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	admin, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	testenv.HeketiClusterOn(t, admin, "127.0.0.1", "127.0.0.2", "127.0.0.3")

	n := newNode(t, g)
	keyFile := filepath.Join(n.dir, "heketi-key")
	if err := os.WriteFile(keyFile, []byte(hk.AdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	n.services = "controller,node"
	n.startMounter()
	// The plugin runs in glusterd's network namespace: heketi, on the
	// host's loopback, is reached through a forwarder there.
	heketiURL := "http://" + g.ForwardFromNetNS(t, strings.TrimPrefix(hk.URL, "http://"))
	n.startPlugin("--heketi-url="+heketiURL, "--heketi-user=admin", "--heketi-key-file="+keyFile)
	m := startMirror(t, g, n.socket(), filepath.Join(n.dir, "sanity.sock"))

	work := filepath.Join(n.dir, "sanity")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"user": "admin", "key": hk.AdminKey}
	secretsFile := filepath.Join(work, "secrets.yaml")
	b, err := yaml.Marshal(map[string]map[string]string{
		"CreateVolumeSecret":                         secrets,
		"DeleteVolumeSecret":                         secrets,
		"ControllerExpandVolumeSecret":               secrets,
		"ControllerValidateVolumeCapabilitiesSecret": secrets,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + m.socket
	// Under the mount service's --allowed-dir (the node's folder), as the
	// kubelet's pods folder is under /var/lib/kubelet.
	cfg.TargetPath = filepath.Join(work, "mount")
	cfg.StagingPath = filepath.Join(work, "staging")
	cfg.SecretsFile = secretsFile
	cfg.TestVolumeParameters = map[string]string{"volumetype": "replicate:3", "gidMin": "40000", "gidMax": "50000"}
	// heketi sizes volumes in whole GiB.
	cfg.TestVolumeSize = 1 << 30
	cfg.TestVolumeExpandSize = 2 << 30
	cfg.IDGen = heketiIDs{}

	var (
		mu      sync.Mutex
		summary []types.SpecReport
	)
	ginkgo.ReportAfterEach(func(r ginkgo.SpecReport) {
		mu.Lock()
		defer mu.Unlock()
		summary = append(summary, r)
	})
	start := time.Now()
	sanity.Test(t, cfg)

	// What ran, what was skipped and why.
	passed, failed := 0, 0
	skipped := map[string]int{}
	for _, r := range summary {
		switch {
		case r.State == types.SpecStatePassed:
			passed++
		case r.State == types.SpecStateSkipped:
			reason := r.Failure.Message
			if reason == "" {
				reason = "(no reason)"
			}
			skipped[reason]++
		case r.State.Is(types.SpecStateFailureStates):
			failed++
		}
	}
	var reasons []string
	nskipped := 0
	for reason, c := range skipped {
		reasons = append(reasons, fmt.Sprintf("%3d  %s", c, reason))
		nskipped += c
		if !slices.Contains(sanitySkips, reason) {
			t.Errorf("csi-sanity skipped %d spec(s) for %q, not for a capability the driver does not advertise", c, reason)
		}
	}
	sort.Strings(reasons)
	t.Logf("csi-sanity: %d specs in %s: %d passed, %d failed, %d skipped:\n%s", len(summary), time.Since(start).Round(time.Second), passed, failed, nskipped, strings.Join(reasons, "\n"))
	if passed == 0 {
		t.Error("no csi-sanity spec passed")
	}

	// What the plugin refused, by method and code: csi-sanity provokes
	// refusals on purpose, but none may be a failure of the driver itself.
	failures := map[string]int{}
	for _, l := range strings.Split(n.plugin.Log(100000), "\n") {
		if !strings.Contains(l, `"CSI call failed"`) && !strings.Contains(l, `"CSI call refused"`) {
			continue
		}
		method, code := logField(l, "method"), logField(l, "code")
		failures[method+" "+code]++
		if code == "Internal" || code == "Unknown" || code == "Unimplemented" {
			t.Errorf("the plugin failed a call with %s: %s", code, l)
		}
	}
	t.Logf("refused calls (method code: count): %v", failures)

	// Nothing left behind.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if l, err := admin.VolumeList(ctx); err != nil || len(l.Volumes) != 0 {
		t.Errorf("heketi volumes left after csi-sanity: %v %v", l, err)
	}
	if made := m.Made(); len(made) != 0 {
		t.Errorf("GlusterFS volumes left after csi-sanity (their DeleteVolume never came): %v", made)
	}
	if out, err := g.Gluster(ctx, "volume", "list"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("glusterd volumes left: %q %v", out, err)
	}
	if mnts := mountsUnder(n.dir); len(mnts) != 0 {
		t.Errorf("mounts left: %v", mnts)
	}
}

// heketiIDs gives volume ids of this driver's form (a heketi volume id: 32
// hex digits), so that the specs about unknown volumes reach heketi
// instead of stopping at the id's syntax.
type heketiIDs struct{}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (heketiIDs) GenerateUniqueValidVolumeID() string { return randomHex(16) }
func (heketiIDs) GenerateInvalidVolumeID() string     { return "not-a-glusterkube-volume-id" }
func (heketiIDs) GenerateUniqueValidNodeID() string   { return "sanity-node-" + randomHex(4) }
func (heketiIDs) GenerateInvalidNodeID() string       { return "no-such-node" }

// logField returns the value of key="value" in a klog line.
func logField(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=\"")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, "\"")
	return v
}
