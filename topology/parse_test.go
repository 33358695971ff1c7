package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// jsonDoc builds a one-cluster JSON file with one node per line, starting
// on line 2, so positions in the expectations below are easy to read: a
// node's line is its index + 2.
func jsonDoc(nodes ...string) string {
	return "{\"clusters\": [{\"nodes\": [\n" + strings.Join(nodes, ",\n") + "\n]}]}\n"
}

func jnode(manage, storage string, rest string) string {
	return fmt.Sprintf(`{"node": {"hostnames": {"manage": [%q], "storage": [%q]}, "zone": 1}, "devices": [%s]}`, manage, storage, rest)
}

var (
	goodNode1 = jnode("node-1", "10.0.0.11", `"/dev/sdb"`)
	goodNode2 = jnode("node-2", "10.0.0.12", `"/dev/sdb"`)
	goodNode3 = jnode("node-3", "10.0.0.13", `"/dev/sdb"`)
)

// want is one expected diagnostic: "line:col path: message substring" with
// severity.
type want struct {
	line, col int
	path      string
	sev       Severity
	msg       string // substring of the message
}

func caret(data string, line, col int) string {
	lines := strings.Split(data, "\n")
	if line < 1 || line > len(lines) {
		return "(no such line)"
	}
	l := lines[line-1]
	r := []rune(l)
	if col < 1 {
		col = 1
	}
	pad := strings.Repeat(" ", min(col-1, len(r)))
	return l + "\n" + pad + "^"
}

func checkDiags(t *testing.T, name, data string, diags []Diagnostic, wants []want) {
	t.Helper()
	if os.Getenv("DUMP_WANTS") != "" {
		for _, d := range diags {
			sev := "Error"
			if d.Severity == Warning {
				sev = "Warning"
			}
			t.Logf("WANT {%d, %d, %q, %s, %q},", d.Line, d.Column, d.Path, sev, d.Message)
		}
	}
	if len(diags) != len(wants) {
		for _, d := range diags {
			t.Logf("got: %s", d)
		}
		t.Fatalf("got %d diagnostics, want %d", len(diags), len(wants))
	}
	for i, w := range wants {
		d := diags[i]
		if d.File != name || d.Line != w.line || d.Column != w.col || d.Path != w.path || d.Severity != w.sev || !strings.Contains(d.Message, w.msg) {
			t.Errorf("diagnostic %d:\n got  %s (%s)\n want %s:%d:%d: %s: %q (%s)\nat:\n%s", i, d, d.Severity, name, w.line, w.col, w.path, w.msg, w.sev, caret(data, d.Line, d.Column))
		}
	}
}

func TestLoadValidation(t *testing.T) {
	tests := []struct {
		name  string
		file  string // name passed to Load; decides the format
		data  string
		wants []want
	}{
		{
			name: "valid three nodes",
			file: "t.json",
			data: jsonDoc(goodNode1, goodNode2, goodNode3),
		},
		{
			name:  "syntax error from the seed's pasted file",
			file:  "topology.json",
			data:  "{\n  \"clusters\": [\n    {\n{\n    {\n      \"nodes\": []\n    }\n  ]\n}\n",
			wants: []want{{4, 1, "", Error, "JSON syntax error: invalid character '{' looking for beginning of object key string"}},
		},
		{
			name:  "truncated JSON",
			file:  "t.json",
			data:  "{\"clusters\": [{\"nodes\": [\n",
			wants: []want{{2, 1, "", Error, "JSON syntax error: unexpected end of file: an object, list or string is not closed"}},
		},
		{
			name:  "trailing comma",
			file:  "t.json",
			data:  jsonDoc(goodNode1+",", goodNode2),
			wants: []want{{2, 111, "", Error, "JSON syntax error: invalid character ',' looking for beginning of value"}},
		},
		{
			name:  "empty file",
			file:  "t.json",
			data:  "  \n",
			wants: []want{{1, 1, "", Error, "the file is empty; expected a JSON object {\"clusters\": [...]}"}},
		},
		{
			name:  "no clusters",
			file:  "t.json",
			data:  "{\n\"clusters\": []\n}",
			wants: []want{{2, 13, "clusters", Error, "no clusters: the list is empty, so there is nothing to load"}},
		},
		{
			name:  "clusters missing",
			file:  "t.json",
			data:  "{}",
			wants: []want{{1, 1, "clusters", Error, "the file has no \"clusters\" list; expected {\"clusters\": [{\"nodes\": [...]}]}"}},
		},
		{
			name:  "top level is a list",
			file:  "t.json",
			data:  "[]",
			wants: []want{{1, 1, "", Error, "the topology must be an object with \"clusters\", got a list"}},
		},
		{
			name: "typo hostname is an unknown field",
			file: "t.json",
			data: jsonDoc(`{"node": {"hostname": {"manage": ["node-1"], "storage": ["10.0.0.11"]}, "zone": 1}, "devices": ["/dev/sdb"]}`, goodNode2, goodNode3),
			wants: []want{
				{2, 10, "clusters[0].nodes[0].node.hostnames", Error, "the node has no \"hostnames\"; expected {\"manage\": [\"<kubernetes node name>\"], \"storage\": [\"<storage IP>\"]}"},
				{2, 11, "clusters[0].nodes[0].node.hostname", Error, "unknown field \"hostname\" in node; expected \"hostnames\", \"zone\", \"tags\" or \"cluster\" (did you mean \"hostnames\"?)"},
			},
		},
		{
			name:  "zone 0",
			file:  "topology.json",
			data:  jsonDoc(goodNode1, strings.Replace(goodNode2, `"zone": 1`, `"zone": 0`, 1), goodNode3),
			wants: []want{{3, 82, "clusters[0].nodes[1].node.zone", Error, "zone must be ≥ 1, got 0"}},
		},
		{
			name: "zone missing, string, fraction",
			file: "t.json",
			data: jsonDoc(strings.Replace(goodNode1, `, "zone": 1`, ``, 1), strings.Replace(goodNode2, `"zone": 1`, `"zone": "1"`, 1), strings.Replace(goodNode3, `"zone": 1`, `"zone": 1.5`, 1)),
			wants: []want{
				{2, 10, "clusters[0].nodes[0].node.zone", Error, "zone is missing; expected a whole number ≥ 1 (heketi refuses 0)"},
				{3, 82, "clusters[0].nodes[1].node.zone", Error, "zone must be a whole number, got \"1\""},
				{4, 82, "clusters[0].nodes[2].node.zone", Error, "zone must be a whole number, got 1.5"},
			},
		},
		{
			name: "missing and empty hostnames",
			file: "t.json",
			data: jsonDoc(
				`{"node": {"hostnames": {"storage": ["10.0.0.11"]}, "zone": 1}, "devices": ["/dev/sdb"]}`,
				`{"node": {"hostnames": {"manage": ["node-2"], "storage": []}, "zone": 1}, "devices": ["/dev/sdb"]}`,
				`{"node": {"hostnames": {"manage": [""], "storage": ["bad host!"]}, "zone": 1}, "devices": ["/dev/sdb"]}`),
			wants: []want{
				{2, 24, "clusters[0].nodes[0].node.hostnames.manage", Error, "manage hostnames are missing; expected a list with at least one: the Kubernetes Node name heketi manages the node by"},
				{3, 58, "clusters[0].nodes[1].node.hostnames.storage", Error, "storage hostnames are empty; expected at least one: the address gluster peers and clients use"},
				{4, 36, "clusters[0].nodes[2].node.hostnames.manage[0]", Error, "manage hostname is empty; expected a host name or IP address"},
				{4, 53, "clusters[0].nodes[2].node.hostnames.storage[0]", Error, "storage hostname \"bad host!\" is not a valid host name or IP address (heketi refuses it)"},
			},
		},
		{
			name: "same manage and storage hostname twice in the file",
			file: "t.json",
			data: jsonDoc(goodNode1, jnode("node-1", "10.0.0.12", `"/dev/sdb"`), jnode("node-3", "10.0.0.11", `"/dev/sdb"`)),
			wants: []want{
				{3, 36, "clusters[0].nodes[1].node.hostnames.manage[0]", Error, "manage hostname \"node-1\" is already used by clusters[0].nodes[0].node.hostnames.manage[0] (line 2:36); each node needs its own"},
				{4, 59, "clusters[0].nodes[2].node.hostnames.storage[0]", Error, "storage hostname \"10.0.0.11\" is already used by clusters[0].nodes[0].node.hostnames.storage[0] (line 2:59); each node needs its own"},
			},
		},
		{
			name: "same device twice in both forms, empty and bad device names",
			file: "t.json",
			data: jsonDoc(
				jnode("node-1", "10.0.0.11", `"/dev/sdb", {"name": "/dev/sdb", "destroydata": false}`),
				jnode("node-2", "10.0.0.12", `""`),
				jnode("node-3", "10.0.0.13", `"sdb", {"name": "/dev/sd b"}, {"destroydata": true}`)),
			wants: []want{
				{2, 119, "clusters[0].nodes[0].devices[1]", Error, "device \"/dev/sdb\" is listed twice on this node (first at line 2:98); heketi would set it up twice"},
				{3, 98, "clusters[0].nodes[1].devices[0]", Error, "the device name is empty; expected a path like /dev/sdb"},
				{4, 98, "clusters[0].nodes[2].devices[0]", Error, "device name \"sdb\" is refused by heketi: expected an absolute path of letters, digits and _ . : / - (like /dev/sdb or /dev/disk/by-id/wwn-0x5000c500a1b2c3d4)"},
				{4, 114, "clusters[0].nodes[2].devices[1].name", Error, "device name \"/dev/sd b\" is refused by heketi: expected an absolute path of letters, digits and _ . : / - (like /dev/sdb or /dev/disk/by-id/wwn-0x5000c500a1b2c3d4)"},
				{4, 128, "clusters[0].nodes[2].devices[2].name", Error, "the device has no \"name\"; expected a path like /dev/sdb"},
				{4, 144, "clusters[0].nodes[2].devices[2].destroydata", Warning, "destroydata is true: heketi will wipe any data, partition or filesystem on the device"},
			},
		},
		{
			name: "tags heketi refuses",
			file: "t.json",
			data: jsonDoc(
				strings.Replace(goodNode1, `"zone": 1`, `"zone": 1, "tags": {"": "x", "bad key": "v", "k": "`+strings.Repeat("v", 65)+`"}`, 1),
				strings.Replace(goodNode2, `"zone": 1`, `"zone": 1, "tags": {"`+strings.Repeat("k", 33)+`": "v"}`, 1),
				jnode("node-3", "10.0.0.13", `{"name": "/dev/sdb", "tags": {`+manyTags(33)+`}}`)),
			wants: []want{
				{2, 94, "clusters[0].nodes[0].node.tags.", Error, "a tag name is empty; heketi refuses empty tag names"},
				{2, 103, "clusters[0].nodes[0].node.tags.bad key", Error, "tag name \"bad key\" is refused by heketi: use only letters, digits, _ . -"},
				{2, 124, "clusters[0].nodes[0].node.tags.k", Error, "the value of tag \"k\" is 65 characters long; heketi accepts at most 64"},
				{3, 94, "clusters[0].nodes[1].node.tags.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", Error, "tag name \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\" is 33 characters long; heketi accepts at most 32"},
				{4, 127, "clusters[0].nodes[2].devices[0].tags", Error, "33 tags; heketi accepts at most 32"},
			},
		},
		{
			name: "duplicate field and wrong types",
			file: "t.json",
			data: jsonDoc(
				`{"node": {"hostnames": {"manage": ["node-1"], "storage": ["10.0.0.11"]}, "zone": 1, "zone": 2}, "devices": ["/dev/sdb"]}`,
				`{"node": {"hostnames": {"manage": "node-2", "storage": ["10.0.0.12"]}, "zone": 1}, "devices": {"name": "/dev/sdb"}}`,
				`{"node": {"hostnames": {"manage": ["node-3"], "storage": [13]}, "zone": 1}, "devices": [true]}`),
			wants: []want{
				{2, 85, "clusters[0].nodes[0].node.zone", Error, "field \"zone\" is given twice in node (first at line 2:74); heketi-cli would silently use the last one"},
				{3, 35, "clusters[0].nodes[1].node.hostnames.manage", Error, "manage must be a list, got \"node-2\""},
				{3, 95, "clusters[0].nodes[1].devices", Error, "devices must be a list, got an object"},
				{4, 59, "clusters[0].nodes[2].node.hostnames.storage[0]", Error, "storage hostname must be a string, got number 13"},
				{4, 89, "clusters[0].nodes[2].devices[0]", Error, "a device must be a string, got boolean true"},
			},
		},
		{
			name: "warnings only: two nodes, node names, case, ignored cluster, no devices",
			file: "t.json",
			data: jsonDoc(
				`{"node": {"hostnames": {"manage": ["10.0.0.1"], "storage": ["10.0.0.11"]}, "Zone": 1, "cluster": "abc"}, "devices": []}`,
				`{"node": {"hostnames": {"manage": ["Node_2"], "storage": ["10.0.0.12"]}, "zone": 1}}`),
			wants: []want{
				{1, 25, "clusters[0].nodes", Warning, "the cluster has 2 node(s): heketi cannot place replica-3 volumes (its default durability) on fewer than 3 nodes"},
				{2, 36, "clusters[0].nodes[0].node.hostnames.manage[0]", Warning, "manage hostname \"10.0.0.1\" is an IP address; with heketi's kube executor manage[0] must be the Kubernetes Node name (fine with the ssh executor)"},
				{2, 76, "clusters[0].nodes[0].node.Zone", Warning, "field names are case-sensitive here; write \"zone\" (heketi-cli accepts \"Zone\", other tools may not)"},
				{2, 98, "clusters[0].nodes[0].node.cluster", Warning, "\"cluster\" is ignored: load puts the node in the heketi cluster that holds the file's cluster (as heketi-cli does)"},
				{2, 117, "clusters[0].nodes[0].devices", Warning, "the node has no devices: it will hold no bricks"},
				{3, 1, "clusters[0].nodes[1].devices", Warning, "the node has no devices: it will hold no bricks"},
				{3, 36, "clusters[0].nodes[1].node.hostnames.manage[0]", Warning, "manage hostname \"Node_2\" does not look like a Kubernetes Node name (lowercase letters, digits, '-' and '.'); with heketi's kube executor manage[0] must be the Node name"},
			},
		},
		{
			name: "a cluster with no nodes, both flags false, bad flag type",
			file: "t.json",
			data: "{\"clusters\": [\n{\"nodes\": [], \"block\": false, \"file\": false},\n{\"nodes\": [" + goodNode1 + "], \"block\": \"yes\"}\n]}",
			wants: []want{
				{2, 1, "clusters[0]", Warning, "block and file are both false: heketi will place no volume in this cluster"},
				{2, 11, "clusters[0].nodes", Error, "the cluster has no nodes; expected at least one (three for replica-3 volumes)"},
				{3, 11, "clusters[1].nodes", Warning, "the cluster has 1 node(s): heketi cannot place replica-3 volumes (its default durability) on fewer than 3 nodes"},
				{3, 133, "clusters[1].block", Error, "block must be true or false, got \"yes\""},
			},
		},
		{
			name: "YAML: positions, zone 0, unknown field, tags",
			file: "topology.yaml",
			data: `clusters:
  - nodes:
      - node:
          hostnames:
            manage: [node-1]
            storage: [10.0.0.11]
          zone: 0
        devices: [/dev/sdb]
      - node:
          hostnames: {manage: [node-2], storage: [10.0.0.12]}
          zone: 1
          tag: {a: b}
        devices:
          - name: /dev/sdb
            destroydata: yes
      - node:
          hostnames: {manage: [node-3], storage: [10.0.0.13]}
          zone: 1
          tags: {rack: 1, "bad key": x}
        devices: [/dev/sdb, /dev/sdb]
`,
			wants: []want{
				{7, 17, "clusters[0].nodes[0].node.zone", Error, "zone must be ≥ 1, got 0"},
				{12, 11, "clusters[0].nodes[1].node.tag", Error, "unknown field \"tag\" in node; expected \"hostnames\", \"zone\", \"tags\" or \"cluster\" (did you mean \"tags\"?)"},
				{15, 26, "clusters[0].nodes[1].devices[0].destroydata", Error, "destroydata must be true or false, got \"yes\""},
				{19, 27, "clusters[0].nodes[2].node.tags.bad key", Error, "tag name \"bad key\" is refused by heketi: use only letters, digits, _ . -"},
				{20, 29, "clusters[0].nodes[2].devices[1]", Error, "device \"/dev/sdb\" is listed twice on this node (first at line 20:19); heketi would set it up twice"},
			},
		},
		{
			name:  "YAML syntax error",
			file:  "t.yml",
			data:  "clusters:\n  - nodes:\n    - node: [\n",
			wants: []want{{3, 0, "", Error, "YAML syntax error: did not find expected node content"}},
		},
		{
			name:  "YAML merge keys are refused",
			file:  "t.yaml",
			data:  "base: &b {zone: 1}\nclusters:\n  - nodes:\n      - node:\n          <<: *b\n",
			wants: []want{{5, 11, "", Error, "YAML merge keys (<<) are not supported in a topology file; write the fields out"}},
		},
		{
			name:  "JSON by content without extension",
			file:  "<stdin>",
			data:  jsonDoc(goodNode1, goodNode2, strings.Replace(goodNode3, `"zone": 1`, `"zone": -1`, 1)),
			wants: []want{{4, 82, "clusters[0].nodes[2].node.zone", Error, "zone must be ≥ 1, got -1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, diags, err := Load(tc.file, []byte(tc.data))
			checkDiags(t, tc.file, tc.data, diags, tc.wants)
			if HasErrors(diags) != (err != nil) {
				t.Errorf("err = %v, but HasErrors = %v", err, HasErrors(diags))
			}
			if err != nil {
				// The error lists every Error-level diagnostic.
				for _, d := range diags {
					if d.Severity == Error && !strings.Contains(err.Error(), d.String()) {
						t.Errorf("error message does not list %q:\n%s", d, err)
					}
				}
			}
			if topo == nil {
				t.Errorf("Load returned a nil topology")
			}
		})
	}
}

func manyTags(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"t%d": "v"`, i))
	}
	return strings.Join(parts, ", ")
}

func TestDiagnosticString(t *testing.T) {
	d := Diagnostic{File: "topology.json", Line: 12, Column: 9, Path: "clusters[0].nodes[1].node.zone", Severity: Error, Message: "zone must be ≥ 1, got 0"}
	if got, want := d.String(), "topology.json:12:9: clusters[0].nodes[1].node.zone: zone must be ≥ 1, got 0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	d.Severity = Warning
	if got, want := d.String(), "topology.json:12:9: warning: clusters[0].nodes[1].node.zone: zone must be ≥ 1, got 0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Diagnostic{File: "t.yaml", Line: 3, Message: "m"}).String(), "t.yaml:3: m"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestJSONAndYAMLAgree: the examples in both formats, and mixed device
// forms, decode to the same Topology.
func TestJSONAndYAMLAgree(t *testing.T) {
	root := filepath.Join("..", "examples")
	var got []*Topology
	for _, name := range []string{"topology.json", "topology.yaml"} {
		topo, diags, err := ReadFile(filepath.Join(root, name), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(diags) != 0 {
			t.Errorf("%s: unexpected diagnostics %v", name, diags)
		}
		got = append(got, topo)
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("JSON and YAML examples differ:\n%+v\n%+v", got[0], got[1])
	}
	want := &Topology{Clusters: []Cluster{{Nodes: []Node{
		{Node: NodeInfo{Hostnames: Hostnames{Manage: []string{"node-1"}, Storage: []string{"10.0.0.11"}}, Zone: 1}, Devices: []Device{{Name: "/dev/sdb"}}},
		{Node: NodeInfo{Hostnames: Hostnames{Manage: []string{"node-2"}, Storage: []string{"10.0.0.12"}}, Zone: 1}, Devices: []Device{{Name: "/dev/sdb"}}},
		{Node: NodeInfo{Hostnames: Hostnames{Manage: []string{"node-3"}, Storage: []string{"10.0.0.13"}}, Zone: 1}, Devices: []Device{{Name: "/dev/sdb"}}},
	}}}}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("examples/topology.json = %+v, want %+v", got[0], want)
	}

	mixedJSON := `{"clusters": [{"block": false, "nodes": [
  {"node": {"hostnames": {"manage": ["a"], "storage": ["10.0.0.1"]}, "zone": 2, "tags": {"rack": "r1"}},
   "devices": ["/dev/sdb", {"name": "/dev/sdc", "destroydata": true, "tags": {"ssd": "yes"}}, {"name": "/dev/sdd"}]}]}]}`
	mixedYAML := `clusters:
- block: false
  nodes:
  - node:
      hostnames: {manage: [a], storage: [10.0.0.1]}
      zone: 2
      tags: {rack: r1}
    devices:
    - /dev/sdb
    - {name: /dev/sdc, destroydata: true, tags: {ssd: "yes"}}
    - name: /dev/sdd
`
	a, _, err := Load("m.json", []byte(mixedJSON))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Load("m.yaml", []byte(mixedYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("mixed forms differ:\n%+v\n%+v", a, b)
	}
	f := false
	wantMixed := &Topology{Clusters: []Cluster{{Block: &f, Nodes: []Node{{
		Node: NodeInfo{Hostnames: Hostnames{Manage: []string{"a"}, Storage: []string{"10.0.0.1"}}, Zone: 2, Tags: map[string]string{"rack": "r1"}},
		Devices: []Device{
			{Name: "/dev/sdb"},
			{Name: "/dev/sdc", DestroyData: true, Tags: map[string]string{"ssd": "yes"}},
			{Name: "/dev/sdd"},
		},
	}}}}}
	if !reflect.DeepEqual(a, wantMixed) {
		t.Errorf("mixed = %+v, want %+v", a, wantMixed)
	}
}

func TestReadFile(t *testing.T) {
	data := jsonDoc(goodNode1, goodNode2, goodNode3)
	topo, _, err := ReadFile("-", strings.NewReader(data))
	if err != nil {
		t.Fatalf("stdin: %v", err)
	}
	if c, n, d := topo.Size(); c != 1 || n != 3 || d != 3 {
		t.Errorf("Size() = %d, %d, %d; want 1, 3, 3", c, n, d)
	}
	_, diags, err := ReadFile("-", strings.NewReader(`{"clusters": [{"nodes": [{"node": {}}]}]}`))
	if err == nil || len(diags) == 0 || diags[0].File != "<stdin>" {
		t.Errorf("stdin with errors: err=%v diags=%v; want errors on <stdin>", err, diags)
	}
	_, _, err = ReadFile(filepath.Join(t.TempDir(), "missing.json"), nil)
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}
