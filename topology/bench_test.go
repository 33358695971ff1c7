package topology

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// Benchmark sizes: the 100 nodes × 4 devices.
const benchNodes, benchDevices = 100, 4

// runTimed runs a command and returns its wall time.
func runTimed(b *testing.B, env []string, name string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, lastLines(out.String(), 20))
	}
	return d
}

func lastLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// checkLoaded fails unless heketi holds exactly the benchmark topology
// (heketi-cli exits 0 even when adds fail).
func checkLoaded(b *testing.B, h *testenv.Heketi) {
	b.Helper()
	c := newHeketiClient(b, h, nil)
	info := topologyInfo(b, c)
	nodes, devices := 0, 0
	for _, cl := range info.ClusterList {
		for _, n := range cl.Nodes {
			nodes++
			devices += len(n.DevicesInfo)
		}
	}
	if len(info.ClusterList) != 1 || nodes != benchNodes || devices != benchNodes*benchDevices {
		b.Fatalf("heketi holds %d clusters, %d nodes, %d devices; want 1, %d, %d", len(info.ClusterList), nodes, devices, benchNodes, benchNodes*benchDevices)
	}
}

func buildGlusterkube(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "glusterkube")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/glusterkube/glusterkube/cmd/glusterkube")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build glusterkube: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkLoadVsHeketiCLI loads 100 nodes × 4 devices into a fresh real
// heketi (mock executor) with `heketi-cli topology load` and with
// `glusterkube topology load`, both built from source and run as
// processes, then re-loads with each (a no-op). It prints the wall times
// and the ratios. Run it once: go test -run XXX -bench LoadVsHeketiCLI
// -benchtime 1x ./topology/ (make bench does).
func BenchmarkLoadVsHeketiCLI(b *testing.B) {
	ctx := context.Background()
	if !testenv.Integration() {
		b.Skipf("integration benchmark: run with %s=1 (make bench)", testenv.IntegrationEnv)
	}
	cli, err := testenv.Binary(ctx, "heketi-cli")
	if err != nil {
		b.Fatal(err)
	}
	gk := buildGlusterkube(b)
	file := filepath.Join(b.TempDir(), "topology.json")
	if err := os.WriteFile(file, []byte(bigDoc(benchNodes, benchDevices)), 0o644); err != nil {
		b.Fatal(err)
	}

	var cliLoad, cliReload, gkLoad, gkReload time.Duration
	for range b.N {
		b.StopTimer()
		h1 := testenv.NewHeketi(b, testenv.HeketiOptions{})
		h2 := testenv.NewHeketi(b, testenv.HeketiOptions{})
		b.StartTimer()

		cliEnv := []string{"HEKETI_CLI_SERVER=" + h1.URL}
		cliLoad += runTimed(b, cliEnv, cli, "topology", "load", "--json="+file)
		cliReload += runTimed(b, cliEnv, cli, "topology", "load", "--json="+file)

		gkEnv := []string{"HEKETI_CLI_SERVER=" + h2.URL}
		gkLoad += runTimed(b, gkEnv, gk, "topology", "load", "-f", file)
		gkReload += runTimed(b, gkEnv, gk, "topology", "load", "-f", file)

		b.StopTimer()
		checkLoaded(b, h1)
		checkLoaded(b, h2)
		_ = h1.Close()
		_ = h2.Close()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(cliLoad.Seconds()/n, "heketi-cli-load-s")
	b.ReportMetric(gkLoad.Seconds()/n, "glusterkube-load-s")
	b.ReportMetric(cliLoad.Seconds()/gkLoad.Seconds(), "load-speedup-x")
	b.ReportMetric(cliReload.Seconds()/n, "heketi-cli-reload-s")
	b.ReportMetric(gkReload.Seconds()/n, "glusterkube-reload-s")
	b.ReportMetric(cliReload.Seconds()/gkReload.Seconds(), "reload-speedup-x")
	fmt.Printf("topology load, %d nodes × %d devices, fresh heketi (mock executor):\n", benchNodes, benchDevices)
	fmt.Printf("  load:    heketi-cli %8.3fs   glusterkube %8.3fs   glusterkube is %.1f× faster\n",
		cliLoad.Seconds()/n, gkLoad.Seconds()/n, cliLoad.Seconds()/gkLoad.Seconds())
	fmt.Printf("  re-load: heketi-cli %8.3fs   glusterkube %8.3fs   glusterkube is %.2f× faster\n",
		cliReload.Seconds()/n, gkReload.Seconds()/n, cliReload.Seconds()/gkReload.Seconds())
}

// BenchmarkLoadParallel measures the load of 100 nodes × 4 devices by
// --parallel value, each into a fresh heketi; DefaultParallel is chosen
// from these figures.
func BenchmarkLoadParallel(b *testing.B) {
	if !testenv.Integration() {
		b.Skipf("integration benchmark: run with %s=1 (make bench)", testenv.IntegrationEnv)
	}
	topo := mustLoad(b, "bench.json", bigDoc(benchNodes, benchDevices))
	for _, parallel := range []int{1, 2, 4, 8, 16, 32} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				h := testenv.NewHeketi(b, testenv.HeketiOptions{})
				c := newHeketiClient(b, h, func(cfg *heketi.Config) { cfg.Timeout = 2 * time.Minute })
				b.StartTimer()
				start := time.Now()
				load(b, c, topo)
				total += time.Since(start)
				b.StopTimer()
				_ = h.Close()
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "load-s")
			fmt.Printf("  --parallel %2d: %.3fs for %d operations\n", parallel, total.Seconds()/float64(b.N), 1+benchNodes+benchNodes*benchDevices)
		})
	}
}
