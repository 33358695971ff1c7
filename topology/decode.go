package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/glusterkube/glusterkube/internal/didyoumean"
)

// decoder turns the parsed tree into a Topology, checking types and field
// names and applying the validation rules (validate.go) as it goes, so every
// problem is reported with its position.
type decoder struct {
	file  string
	diags []Diagnostic

	manage  map[string]seen // manage hostname -> first use
	storage map[string]seen // storage hostname -> first use
}

// seen is where a value was first used.
type seen struct {
	path      string
	line, col int
}

func (s seen) where() string {
	if s.line > 0 {
		return fmt.Sprintf("%s (line %d:%d)", s.path, s.line, s.col)
	}
	return s.path
}

func (d *decoder) add(sev Severity, n *tnode, path, format string, args ...any) {
	diag := Diagnostic{File: d.file, Path: path, Severity: sev, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		diag.Line, diag.Column = n.line, n.col
	}
	d.diags = append(d.diags, diag)
}

func (d *decoder) errorf(n *tnode, path, format string, args ...any) {
	d.add(Error, n, path, format, args...)
}

func (d *decoder) warnf(n *tnode, path, format string, args ...any) {
	d.add(Warning, n, path, format, args...)
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// fields reads an object, checking for unknown and duplicate fields. known
// lists the accepted names in the order they are documented. It returns the
// value of each known field present, by canonical name, and the key node.
func (d *decoder) fields(n *tnode, path, what string, known ...string) (vals map[string]*tnode, keys map[string]*tnode, ok bool) {
	if n.kind != kindMap {
		if n.kind == kindNull {
			d.errorf(n, path, "%s is null; expected an object with %s", what, quoteList(known))
		} else {
			d.errorf(n, path, "%s must be an object with %s, got %s", what, quoteList(known), n.describe())
		}
		return nil, nil, false
	}
	vals = map[string]*tnode{}
	keys = map[string]*tnode{}
	for i, k := range n.keys {
		name := k.text
		canon := ""
		for _, kn := range known {
			if kn == name {
				canon = kn
				break
			}
		}
		if canon == "" {
			// heketi-cli decodes with encoding/json, which matches field
			// names case-insensitively: accept, but say so.
			for _, kn := range known {
				if strings.EqualFold(kn, name) {
					canon = kn
					d.warnf(k, join(path, name), "field names are case-sensitive here; write %q (heketi-cli accepts %q, other tools may not)", kn, name)
					break
				}
			}
		}
		if canon == "" {
			msg := fmt.Sprintf("unknown field %q in %s; expected %s", name, what, quoteList(known))
			if s := didyoumean.Closest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, join(path, name), "%s", msg)
			continue
		}
		if first, dup := keys[canon]; dup {
			d.errorf(k, join(path, canon), "field %q is given twice in %s (first at line %d:%d); heketi-cli would silently use the last one", name, what, first.line, first.col)
			continue
		}
		keys[canon] = k
		vals[canon] = n.vals[i]
	}
	return vals, keys, true
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// list reads a list; null reads as an empty list (as encoding/json does).
func (d *decoder) list(n *tnode, path, what string) ([]*tnode, bool) {
	switch n.kind {
	case kindSeq:
		return n.items, true
	case kindNull:
		return nil, true
	}
	d.errorf(n, path, "%s must be a list, got %s", what, n.describe())
	return nil, false
}

// str reads a string. JSON needs a JSON string (as heketi-cli does); YAML
// takes any scalar as written. null reads as "".
func (d *decoder) str(n *tnode, path, what string) (string, bool) {
	switch n.kind {
	case kindNull:
		return "", true
	case kindScalar:
		if n.typ == scalarString || n.fromYAML {
			return n.text, true
		}
	}
	d.errorf(n, path, "%s must be a string, got %s", what, n.describe())
	return "", false
}

// integer reads a whole number. null reads as 0.
func (d *decoder) integer(n *tnode, path, what string) (int, bool) {
	switch n.kind {
	case kindNull:
		return 0, true
	case kindScalar:
		if n.typ == scalarNumber {
			text := n.text
			if n.fromYAML {
				text = strings.ReplaceAll(text, "_", "")
			}
			base := 10
			if n.fromYAML {
				base = 0 // 0x.., 0o.. as YAML allows
				if strings.HasPrefix(strings.TrimLeft(text, "+-"), "0o") {
					text = strings.Replace(text, "0o", "0", 1)
				}
			}
			v, err := strconv.ParseInt(text, base, 64)
			if err == nil && v >= math.MinInt32 && v <= math.MaxInt32 {
				return int(v), true
			}
			d.errorf(n, path, "%s must be a whole number, got %s", what, n.text)
			return 0, false
		}
	}
	d.errorf(n, path, "%s must be a whole number, got %s", what, n.describe())
	return 0, false
}

// boolean reads true or false. null reads as false.
func (d *decoder) boolean(n *tnode, path, what string) (bool, bool) {
	switch n.kind {
	case kindNull:
		return false, true
	case kindScalar:
		if n.typ == scalarBool {
			switch strings.ToLower(n.text) {
			case "true":
				return true, true
			case "false":
				return false, true
			}
		}
	}
	d.errorf(n, path, "%s must be true or false, got %s", what, n.describe())
	return false, false
}

func (d *decoder) topology(n *tnode) *Topology {
	t := &Topology{}
	vals, _, ok := d.fields(n, "", "the topology", "clusters")
	if !ok {
		return t
	}
	cn, present := vals["clusters"]
	if !present {
		d.errorf(n, "clusters", "the file has no \"clusters\" list; expected {\"clusters\": [{\"nodes\": [...]}]}")
		return t
	}
	items, ok := d.list(cn, "clusters", "clusters")
	if !ok {
		return t
	}
	if len(items) == 0 {
		d.errorf(cn, "clusters", "no clusters: the list is empty, so there is nothing to load")
	}
	for i, it := range items {
		t.Clusters = append(t.Clusters, d.cluster(it, index("clusters", i)))
	}
	return t
}

func (d *decoder) cluster(n *tnode, path string) Cluster {
	var c Cluster
	vals, _, ok := d.fields(n, path, "a cluster", "nodes", "block", "file")
	if !ok {
		return c
	}
	for _, f := range []string{"block", "file"} {
		if v, present := vals[f]; present && v.kind != kindNull {
			b, ok := d.boolean(v, join(path, f), f)
			if ok {
				if f == "block" {
					c.Block = &b
				} else {
					c.File = &b
				}
			}
		}
	}
	if c.Block != nil && c.File != nil && !*c.Block && !*c.File {
		d.warnf(n, path, "block and file are both false: heketi will place no volume in this cluster")
	}
	nn, present := vals["nodes"]
	if !present {
		d.errorf(n, join(path, "nodes"), "the cluster has no \"nodes\" list; expected at least one node")
		return c
	}
	items, ok := d.list(nn, join(path, "nodes"), "nodes")
	if !ok {
		return c
	}
	switch {
	case len(items) == 0:
		d.errorf(nn, join(path, "nodes"), "the cluster has no nodes; expected at least one (three for replica-3 volumes)")
	case len(items) < 3:
		d.warnf(nn, join(path, "nodes"), "the cluster has %d node(s): heketi cannot place replica-3 volumes (its default durability) on fewer than 3 nodes", len(items))
	}
	for i, it := range items {
		c.Nodes = append(c.Nodes, d.node(it, index(join(path, "nodes"), i)))
	}
	return c
}

func (d *decoder) node(n *tnode, path string) Node {
	var nd Node
	vals, _, ok := d.fields(n, path, "a node entry", "node", "devices")
	if !ok {
		return nd
	}
	if v, present := vals["node"]; present {
		nd.Node = d.nodeInfo(v, join(path, "node"))
	} else {
		d.errorf(n, join(path, "node"), "the node entry has no \"node\" object; expected {\"node\": {\"hostnames\": {...}, \"zone\": 1}, \"devices\": [...]}")
	}
	dn, present := vals["devices"]
	if !present || dn.kind == kindNull {
		d.warnf(n, join(path, "devices"), "the node has no devices: it will hold no bricks")
		return nd
	}
	items, ok := d.list(dn, join(path, "devices"), "devices")
	if !ok {
		return nd
	}
	if len(items) == 0 {
		d.warnf(dn, join(path, "devices"), "the node has no devices: it will hold no bricks")
	}
	names := map[string]*tnode{}
	for i, it := range items {
		dpath := index(join(path, "devices"), i)
		dev, nameNode := d.device(it, dpath)
		nd.Devices = append(nd.Devices, dev)
		if dev.Name == "" || nameNode == nil {
			continue
		}
		if first, dup := names[dev.Name]; dup {
			d.errorf(nameNode, dpath, "device %q is listed twice on this node (first at line %d:%d); heketi would set it up twice", dev.Name, first.line, first.col)
			continue
		}
		names[dev.Name] = nameNode
	}
	return nd
}

func (d *decoder) nodeInfo(n *tnode, path string) NodeInfo {
	var ni NodeInfo
	vals, _, ok := d.fields(n, path, "node", "hostnames", "zone", "tags", "cluster")
	if !ok {
		return ni
	}
	if v, present := vals["cluster"]; present {
		d.warnf(v, join(path, "cluster"), "\"cluster\" is ignored: load puts the node in the heketi cluster that holds the file's cluster (as heketi-cli does)")
	}
	if hn, present := vals["hostnames"]; present {
		ni.Hostnames = d.hostnames(hn, join(path, "hostnames"))
	} else {
		d.errorf(n, join(path, "hostnames"), "the node has no \"hostnames\"; expected {\"manage\": [\"<kubernetes node name>\"], \"storage\": [\"<storage IP>\"]}")
	}
	zn, present := vals["zone"]
	switch {
	case !present || zn.kind == kindNull:
		d.errorf(n, join(path, "zone"), "zone is missing; expected a whole number ≥ 1 (heketi refuses 0)")
	default:
		if z, ok := d.integer(zn, join(path, "zone"), "zone"); ok {
			ni.Zone = z
			if z < 1 {
				d.errorf(zn, join(path, "zone"), "zone must be ≥ 1, got %d", z)
			}
		}
	}
	if tn, present := vals["tags"]; present {
		ni.Tags = d.tags(tn, join(path, "tags"))
	}
	return ni
}

func (d *decoder) hostnames(n *tnode, path string) Hostnames {
	var h Hostnames
	vals, _, ok := d.fields(n, path, "hostnames", "manage", "storage")
	if !ok {
		return h
	}
	var first *tnode
	h.Manage, first = d.hostList(n, vals["manage"], join(path, "manage"), "manage", d.manage)
	h.Storage, _ = d.hostList(n, vals["storage"], join(path, "storage"), "storage", d.storage)
	if first != nil && checkHost(h.Manage[0]) == "" {
		if msg := checkNodeName(h.Manage[0]); msg != "" {
			d.warnf(first, index(join(path, "manage"), 0), "%s", msg)
		}
	}
	return h
}

// hostList reads a hostname list; it also returns the node of the first
// hostname when that one is a string.
func (d *decoder) hostList(parent, n *tnode, path, what string, used map[string]seen) ([]string, *tnode) {
	expect := map[string]string{
		"manage":  "the Kubernetes Node name heketi manages the node by",
		"storage": "the address gluster peers and clients use",
	}[what]
	if n == nil || n.kind == kindNull {
		at := parent
		if n != nil {
			at = n
		}
		d.errorf(at, path, "%s hostnames are missing; expected a list with at least one: %s", what, expect)
		return nil, nil
	}
	items, ok := d.list(n, path, what)
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "%s hostnames are empty; expected at least one: %s", what, expect)
		return nil, nil
	}
	out := make([]string, 0, len(items))
	var first *tnode
	for i, it := range items {
		p := index(path, i)
		h, ok := d.str(it, p, what+" hostname")
		if !ok {
			continue
		}
		if i == 0 {
			first = it
		}
		out = append(out, h)
		if msg := checkHost(h); msg != "" {
			d.errorf(it, p, "%s hostname %s", what, msg)
			continue
		}
		if first, dup := used[h]; dup {
			d.errorf(it, p, "%s hostname %q is already used by %s; each node needs its own", what, h, first.where())
			continue
		}
		used[h] = seen{path: p, line: it.line, col: it.col}
	}
	return out, first
}

func (d *decoder) device(n *tnode, path string) (Device, *tnode) {
	var dev Device
	if n.kind == kindScalar || n.kind == kindNull {
		// The short form: the device name as a string.
		name, ok := d.str(n, path, "a device")
		if !ok {
			return dev, nil
		}
		dev.Name = name
		d.checkDeviceName(n, path, name)
		return dev, n
	}
	vals, _, ok := d.fields(n, path, "a device", "name", "destroydata", "tags")
	if !ok {
		return dev, nil
	}
	nn, present := vals["name"]
	name := ""
	if !present {
		d.errorf(n, join(path, "name"), "the device has no \"name\"; expected a path like /dev/sdb")
		nn = nil
	} else if s, ok := d.str(nn, join(path, "name"), "device name"); ok {
		name = s
		dev.Name = name
		d.checkDeviceName(nn, join(path, "name"), name)
	} else {
		nn = nil
	}
	if v, present := vals["destroydata"]; present {
		if b, ok := d.boolean(v, join(path, "destroydata"), "destroydata"); ok {
			dev.DestroyData = b
			if b {
				d.warnf(v, join(path, "destroydata"), "destroydata is true: heketi will wipe any data, partition or filesystem on %s", orUnnamed(name))
			}
		}
	}
	if tn, present := vals["tags"]; present {
		dev.Tags = d.tags(tn, join(path, "tags"))
	}
	return dev, nn
}

func orUnnamed(name string) string {
	if name == "" {
		return "the device"
	}
	return name
}

func (d *decoder) checkDeviceName(n *tnode, path, name string) {
	if msg := checkDeviceName(name); msg != "" {
		d.errorf(n, path, "%s", msg)
	}
}

// tags reads a tag map and applies heketi's ValidateTags rules, reporting
// every broken rule (heketi stops at the first).
func (d *decoder) tags(n *tnode, path string) map[string]string {
	if n.kind == kindNull {
		return nil
	}
	if n.kind != kindMap {
		d.errorf(n, path, "tags must be an object of names to string values, got %s", n.describe())
		return nil
	}
	tags := map[string]string{}
	first := map[string]*tnode{}
	for i, k := range n.keys {
		p := join(path, k.text)
		if f, dup := first[k.text]; dup {
			d.errorf(k, p, "tag %q is given twice (first at line %d:%d)", k.text, f.line, f.col)
			continue
		}
		first[k.text] = k
		if msg := checkTagName(k.text); msg != "" {
			d.errorf(k, p, "%s", msg)
		}
		v, ok := d.str(n.vals[i], p, fmt.Sprintf("the value of tag %q", k.text))
		if !ok {
			continue
		}
		if msg := checkTagValue(k.text, v); msg != "" {
			d.errorf(n.vals[i], p, "%s", msg)
		}
		tags[k.text] = v
	}
	if len(tags) > maxTags {
		d.errorf(n, path, "%d tags; heketi accepts at most %d", len(tags), maxTags)
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}
