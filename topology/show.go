package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"gopkg.in/yaml.v3"
)

// Export turns heketi's topology into a topology file that load accepts and
// that plans as zero changes against the same heketi. Clusters without
// nodes are left out (a file cluster needs nodes); destroydata is never
// exported. Clusters, nodes and devices are sorted for stable output.
func Export(cur *api.TopologyInfoResponse) *Topology {
	t := &Topology{Clusters: []Cluster{}}
	if cur == nil {
		return t
	}
	clusters := slices.Clone(cur.ClusterList)
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Id < clusters[j].Id })
	for _, c := range clusters {
		if len(c.Nodes) == 0 {
			continue
		}
		fc := Cluster{Nodes: []Node{}}
		if !c.Block || !c.File {
			b, f := c.Block, c.File
			fc.Block, fc.File = &b, &f
		}
		nodes := slices.Clone(c.Nodes)
		sort.Slice(nodes, func(i, j int) bool { return manage0(&nodes[i]) < manage0(&nodes[j]) })
		for _, n := range nodes {
			fn := Node{
				Node: NodeInfo{
					Hostnames: Hostnames{Manage: slices.Clone([]string(n.Hostnames.Manage)), Storage: slices.Clone([]string(n.Hostnames.Storage))},
					Zone:      n.Zone,
					Tags:      maps.Clone(n.Tags),
				},
				Devices: []Device{},
			}
			if len(fn.Node.Tags) == 0 {
				fn.Node.Tags = nil
			}
			devs := slices.Clone(n.DevicesInfo)
			sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
			for _, d := range devs {
				fd := Device{Name: d.Name, Tags: maps.Clone(d.Tags)}
				if len(fd.Tags) == 0 {
					fd.Tags = nil
				}
				fn.Devices = append(fn.Devices, fd)
			}
			fc.Nodes = append(fc.Nodes, fn)
		}
		t.Clusters = append(t.Clusters, fc)
	}
	return t
}

// EmptyClusters lists the heketi clusters Export leaves out because they
// have no nodes.
func EmptyClusters(cur *api.TopologyInfoResponse) []string {
	var ids []string
	if cur == nil {
		return nil
	}
	for _, c := range cur.ClusterList {
		if len(c.Nodes) == 0 {
			ids = append(ids, c.Id)
		}
	}
	sort.Strings(ids)
	return ids
}

// EncodeJSON writes t as indented JSON, devices without tags in heketi's
// short string form.
func EncodeJSON(w io.Writer, t *Topology) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// EncodeYAML writes t as YAML.
func EncodeYAML(w io.Writer, t *Topology) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteTable writes heketi's topology as a table of nodes and devices, for
// people.
func WriteTable(w io.Writer, cur *api.TopologyInfoResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tZONE\tSTORAGE\tSTATE\tDEVICES")
	clusters := slices.Clone(cur.ClusterList)
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Id < clusters[j].Id })
	for _, c := range clusters {
		if len(c.Nodes) == 0 {
			fmt.Fprintf(tw, "%s\t(no nodes)\t\t\t\t\n", c.Id)
			continue
		}
		nodes := slices.Clone(c.Nodes)
		sort.Slice(nodes, func(i, j int) bool { return manage0(&nodes[i]) < manage0(&nodes[j]) })
		for _, n := range nodes {
			var devs []string
			for _, d := range n.DevicesInfo {
				s := d.Name
				if d.State != "" && d.State != api.EntryStateOnline {
					s += " (" + string(d.State) + ")"
				}
				devs = append(devs, s)
			}
			sort.Strings(devs)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", c.Id, manage0(&n), n.Zone, strings.Join(n.Hostnames.Storage, ","), n.State, strings.Join(devs, " "))
		}
	}
	return tw.Flush()
}
