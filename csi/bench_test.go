package csi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// BenchmarkNodePublish measures NodePublishVolume latency (p50, p95 over
// 50 mounts) through the node plugin — mounting in-process, and through
// the mount service — against its floor, a bare `mount -t glusterfs` with
// the same options of the same volumes on the same glusterd, interleaved
// in the same run so both see the same machine. Target: within 1.2× of
// the floor.
func BenchmarkNodePublish(b *testing.B) {
	const mounts, volumes = 50, 5
	g := testenv.NewGlusterd(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for i := range volumes {
		if _, err := g.CreateHeketiVolume(ctx, fmt.Sprintf("bench%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	local := newNode(b, g)
	local.startPlugin()
	viaService := newNode(b, g)
	viaService.startMounter()
	viaService.startPlugin()
	bare := newNode(b, g) // only its folders

	const servers = "127.0.0.1,127.0.0.2,127.0.0.3"
	var tBare, tLocal, tService []time.Duration
	for range b.N {
		for i := range mounts {
			vol := fmt.Sprintf("bench%d", i%volumes)
			id := fmt.Sprintf("%s-%d", vol, i)

			// The floor: what an administrator would type, with the
			// options the plugin gives the FUSE client.
			target := bare.target("pod-"+id, "pv")
			if err := os.MkdirAll(target, 0o750); err != nil {
				b.Fatal(err)
			}
			opts := []string{"auto_unmount", "log-level=ERROR", "log-file=" + filepath.Join(bare.logDir, vol+".log"), "backup-volfile-servers=127.0.0.2:127.0.0.3"}
			start := time.Now()
			if err := bareMount(g, "127.0.0.1:/"+vol, target, opts); err != nil {
				b.Fatal(err)
			}
			tBare = append(tBare, time.Since(start))
			if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
				b.Fatalf("umount: %v %s", err, out)
			}
			waitNoClient(b, target)

			for _, n := range []*node{local, viaService} {
				target := n.target("pod-"+id, "pv")
				req := publishRequest(id, vol, servers, target)
				if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, err := n.Node.NodePublishVolume(ctx, req); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				if n == local {
					tLocal = append(tLocal, d)
				} else {
					tService = append(tService, d)
				}
				n.unpublish(b, ctx, id, target)
			}
		}
	}
	pBare50, pBare95 := percentile(tBare, 50), percentile(tBare, 95)
	var rows strings.Builder
	fmt.Fprintf(&rows, "\nNodePublishVolume latency, %d mounts of %d replica-3 volumes each way:\n", len(tBare), volumes)
	fmt.Fprintf(&rows, "  %-40s %9s %9s %8s %8s\n", "", "p50", "p95", "p50 ×", "p95 ×")
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"bare mount -t glusterfs (floor)", tBare}, {"NodePublishVolume, in-process mount", tLocal}, {"NodePublishVolume, via the mount service", tService}} {
		p50, p95 := percentile(r.d, 50), percentile(r.d, 95)
		fmt.Fprintf(&rows, "  %-40s %9v %9v %7.2f× %7.2f×\n", r.name, p50.Round(time.Millisecond/10), p95.Round(time.Millisecond/10),
			float64(p50)/float64(pBare50), float64(p95)/float64(pBare95))
	}
	fmt.Print(rows.String())
	b.ReportMetric(float64(pBare50.Microseconds())/1000, "bare-p50-ms")
	b.ReportMetric(float64(percentile(tLocal, 50))/float64(pBare50), "local-p50-ratio")
	b.ReportMetric(float64(percentile(tLocal, 95))/float64(pBare95), "local-p95-ratio")
	b.ReportMetric(float64(percentile(tService, 50))/float64(pBare50), "service-p50-ratio")
	b.ReportMetric(float64(percentile(tService, 95))/float64(pBare95), "service-p95-ratio")
}

// percentile is the nearest-rank percentile.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}
