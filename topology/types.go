package topology

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
