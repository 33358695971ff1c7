package topology

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// heketiCLIFile mirrors the types heketi-cli's `topology load` decodes
// (client/cli/go/cmds/topology.go), to check that a JSON file we accept is
// one heketi-cli reads the same way.
type heketiCLIFile struct {
	Clusters []struct {
		Nodes []struct {
			Devices []heketiCLIDevice  `json:"devices"`
			Node    api.NodeAddRequest `json:"node"`
		} `json:"nodes"`
		Block *bool `json:"block,omitempty"`
		File  *bool `json:"file,omitempty"`
	} `json:"clusters"`
}

type heketiCLIDevice struct {
	api.Device
	DestroyData bool `json:"destroydata,omitempty"`
}

func (d *heketiCLIDevice) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		d.Name = s
		return nil
	}
	var o struct {
		api.Device
		DestroyData bool `json:"destroydata,omitempty"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	d.Device, d.DestroyData = o.Device, o.DestroyData
	return nil
}

// FuzzLoad: Load never panics, and whatever it accepts passes heketi's own
// validation of every request load would send (NodeAddRequest and
// DeviceAddRequest Validate, plus the checks heketi's handlers make after
// it), has no hostname or device twice, and — for JSON — decodes with
// heketi-cli's own types to the same topology.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"topology.json", "topology.yaml"} {
		if b, err := os.ReadFile(filepath.Join("..", "examples", name)); err == nil {
			f.Add(name, b)
		}
	}
	f.Add("t.json", []byte(jsonDoc(goodNode1, goodNode2, goodNode3)))
	f.Add("t.json", []byte(jsonDoc(jnode("node-1", "10.0.0.11", `"/dev/sdb", {"name": "/dev/sdc", "destroydata": true, "tags": {"a": "b"}}`))))
	f.Add("t.yaml", []byte("clusters:\n- nodes:\n  - node: {hostnames: {manage: [a], storage: [b]}, zone: 1, tags: {k: v}}\n    devices: [/dev/sdb, {name: /dev/sdc}]\n"))
	f.Add("t", []byte(`{"clusters":[{"nodes":[{"node":{"hostnames":{"manage":["x"],"storage":["1.2.3.4"]},"zone":1}}]}]}`))
	f.Add("t.yml", []byte("a: &a [1]\nb: *a\n"))

	f.Fuzz(func(t *testing.T, name string, data []byte) {
		topo, diags, err := Load(name, data)
		if (err != nil) != HasErrors(diags) {
			t.Fatalf("err = %v but HasErrors = %v", err, HasErrors(diags))
		}
		for _, d := range diags {
			if d.Message == "" {
				t.Fatalf("diagnostic without a message: %+v", d)
			}
		}
		if err != nil {
			return
		}
		if len(topo.Clusters) == 0 {
			t.Fatal("accepted a topology without clusters")
		}
		manage, storage := map[string]bool{}, map[string]bool{}
		for _, c := range topo.Clusters {
			if len(c.Nodes) == 0 {
				t.Fatal("accepted a cluster without nodes")
			}
			for _, n := range c.Nodes {
				req := api.NodeAddRequest{
					Zone:      n.Node.Zone,
					Hostnames: api.HostAddresses{Manage: n.Node.Hostnames.Manage, Storage: n.Node.Hostnames.Storage},
					ClusterId: strings.Repeat("0", 32),
					Tags:      n.Node.Tags,
				}
				if err := req.Validate(); err != nil {
					t.Fatalf("accepted a node heketi refuses: %v\n%+v", err, req)
				}
				// The checks heketi's NodeAdd handler makes after Validate.
				if len(req.Hostnames.Manage) == 0 || len(req.Hostnames.Storage) == 0 || req.Zone == 0 {
					t.Fatalf("accepted a node heketi's handler refuses: %+v", req)
				}
				for _, h := range append(append([]string{}, n.Node.Hostnames.Manage...), n.Node.Hostnames.Storage...) {
					if h == "" {
						t.Fatal("accepted an empty hostname")
					}
				}
				for _, h := range n.Node.Hostnames.Manage {
					if manage[h] {
						t.Fatalf("accepted manage hostname %q twice", h)
					}
					manage[h] = true
				}
				for _, h := range n.Node.Hostnames.Storage {
					if storage[h] {
						t.Fatalf("accepted storage hostname %q twice", h)
					}
					storage[h] = true
				}
				devs := map[string]bool{}
				for _, d := range n.Devices {
					dreq := api.DeviceAddRequest{Device: api.Device{Name: d.Name, Tags: d.Tags}, NodeId: strings.Repeat("0", 32), DestroyData: d.DestroyData}
					if err := dreq.Validate(); err != nil {
						t.Fatalf("accepted a device heketi refuses: %v\n%+v", err, dreq)
					}
					if devs[d.Name] {
						t.Fatalf("accepted device %q twice on a node", d.Name)
					}
					devs[d.Name] = true
				}
			}
		}
		if detectFormat(name, data) == formatJSON {
			var cli heketiCLIFile
			if err := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))).Decode(&cli); err != nil {
				t.Fatalf("accepted JSON heketi-cli cannot decode: %v", err)
			}
			if len(cli.Clusters) != len(topo.Clusters) {
				t.Fatalf("heketi-cli reads %d clusters, we read %d", len(cli.Clusters), len(topo.Clusters))
			}
			for ci, c := range cli.Clusters {
				if len(c.Nodes) != len(topo.Clusters[ci].Nodes) {
					t.Fatalf("cluster %d: heketi-cli reads %d nodes, we read %d", ci, len(c.Nodes), len(topo.Clusters[ci].Nodes))
				}
				for ni, n := range c.Nodes {
					ours := topo.Clusters[ci].Nodes[ni]
					if n.Node.Zone != ours.Node.Zone || !TagsEqual(n.Node.Tags, ours.Node.Tags) ||
						strings.Join(n.Node.Hostnames.Manage, "\x00") != strings.Join(ours.Node.Hostnames.Manage, "\x00") ||
						strings.Join(n.Node.Hostnames.Storage, "\x00") != strings.Join(ours.Node.Hostnames.Storage, "\x00") ||
						len(n.Devices) != len(ours.Devices) {
						t.Fatalf("node %d.%d: heketi-cli reads %+v, we read %+v", ci, ni, n, ours)
					}
					for di, d := range n.Devices {
						od := ours.Devices[di]
						if d.Name != od.Name || d.DestroyData != od.DestroyData || !TagsEqual(d.Tags, od.Tags) {
							t.Fatalf("device %d.%d.%d: heketi-cli reads %+v, we read %+v", ci, ni, di, d, od)
						}
					}
				}
			}
		}
	})
}
