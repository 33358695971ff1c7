package topology

import (
	"encoding/json"

	"gopkg.in/yaml.v3"
)

// Topology is heketi's topology file: the clusters, nodes and devices that
// `heketi-cli topology load` reads, field for field.
type Topology struct {
	Clusters []Cluster `json:"clusters" yaml:"clusters"`
}

// Cluster is one heketi cluster in the file.
type Cluster struct {
	Nodes []Node `json:"nodes" yaml:"nodes"`
	// Block and File are heketi's cluster flags; nil means heketi's default
	// (true).
	Block *bool `json:"block,omitempty" yaml:"block,omitempty"`
	File  *bool `json:"file,omitempty" yaml:"file,omitempty"`
}

// Node is one storage node and its devices.
type Node struct {
	Node    NodeInfo `json:"node" yaml:"node"`
	Devices []Device `json:"devices" yaml:"devices"`
}

// NodeInfo is the "node" object of a topology node.
type NodeInfo struct {
	Hostnames Hostnames         `json:"hostnames" yaml:"hostnames"`
	Zone      int               `json:"zone" yaml:"zone"`
	Tags      map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Hostnames are the node's management and storage addresses. Manage[0] is
// the node's identity (and the Kubernetes Node name under heketi's kube
// executor); Storage holds the addresses gluster clients connect to.
type Hostnames struct {
	Manage  []string `json:"manage" yaml:"manage"`
	Storage []string `json:"storage" yaml:"storage"`
}

// Device is a raw block device on a node. In the file it is either a plain
// string (the name) or an object {name, destroydata, tags}.
type Device struct {
	Name        string            `json:"name" yaml:"name"`
	DestroyData bool              `json:"destroydata,omitempty" yaml:"destroydata,omitempty"`
	Tags        map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// MarshalJSON writes a device without tags or destroydata in heketi's short
// form, the plain name.
func (d Device) MarshalJSON() ([]byte, error) {
	if len(d.Tags) == 0 && !d.DestroyData {
		return json.Marshal(d.Name)
	}
	type plain Device
	return json.Marshal(plain(d))
}

// UnmarshalJSON reads either form of a device, as heketi-cli does. (Load
// reads files with positions and validation; this is for callers that
// decode a Topology themselves.)
func (d *Device) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = Device{Name: s}
		return nil
	}
	type plain Device
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*d = Device(p)
	return nil
}

// MarshalYAML writes a device without tags or destroydata as its name.
func (d Device) MarshalYAML() (any, error) {
	if len(d.Tags) == 0 && !d.DestroyData {
		return d.Name, nil
	}
	type plain Device
	return plain(d), nil
}

// UnmarshalYAML reads either form of a device.
func (d *Device) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*d = Device{Name: n.Value}
		return nil
	}
	type plain Device
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*d = Device(p)
	return nil
}

// Size counts the file's clusters, nodes and devices.
func (t *Topology) Size() (clusters, nodes, devices int) {
	for _, c := range t.Clusters {
		clusters++
		for _, n := range c.Nodes {
			nodes++
			devices += len(n.Devices)
		}
	}
	return
}
