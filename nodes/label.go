package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/topology"
)

// Defaults for Options fields left empty.
const (
	DefaultLabelKey   = "storagenode"
	DefaultLabelValue = "glusterfs"
	// DefaultZoneLabel records the heketi zone of a storage node. It is the
	// project's own key: topology.kubernetes.io/zone belongs to the cloud
	// provider.
	DefaultZoneLabel = "glusterkube.io/zone"
	// FieldManager names glusterkube in managedFields.
	FieldManager = "glusterkube"
)

// BrickSource is the part of the heketi client prune needs.
type BrickSource interface {
	TopologyInfo(ctx context.Context) (*api.TopologyInfoResponse, error)
}

// Options configure Label.
type Options struct {
	// LabelKey and LabelValue mark a storage node (default
	// storagenode=glusterfs, the DaemonSet's nodeSelector).
	LabelKey, LabelValue string
	// ZoneLabel is the label key that records the heketi zone; "-" disables
	// it, "" means DefaultZoneLabel.
	ZoneLabel string
	// DryRun computes and reports every change without making it.
	DryRun bool
	// Prune removes the labels from Nodes that carry the storage label but
	// are no longer in the topology, unless heketi still holds bricks on
	// them. Without Prune such Nodes are only reported.
	Prune bool
	// Heketi is asked for bricks before pruning; required when Prune.
	Heketi BrickSource
	// Lister, when set, is where Label reads the Nodes (a controller's
	// informer cache) instead of listing them from the API server.
	Lister corelisters.NodeLister
}

func (o *Options) defaults() error {
	if o.LabelKey == "" {
		o.LabelKey = DefaultLabelKey
	}
	if o.LabelValue == "" && o.LabelKey == DefaultLabelKey {
		o.LabelValue = DefaultLabelValue
	}
	if o.ZoneLabel == "" {
		o.ZoneLabel = DefaultZoneLabel
	}
	if o.ZoneLabel == "-" {
		o.ZoneLabel = ""
	}
	if errs := validation.IsQualifiedName(o.LabelKey); len(errs) > 0 {
		return fmt.Errorf("label key %q is invalid: %s", o.LabelKey, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(o.LabelValue); len(errs) > 0 {
		return fmt.Errorf("label value %q is invalid: %s", o.LabelValue, strings.Join(errs, "; "))
	}
	if o.ZoneLabel != "" {
		if errs := validation.IsQualifiedName(o.ZoneLabel); len(errs) > 0 {
			return fmt.Errorf("zone label key %q is invalid: %s", o.ZoneLabel, strings.Join(errs, "; "))
		}
		if o.ZoneLabel == o.LabelKey {
			return fmt.Errorf("zone label key and storage label key are both %q; pick different keys", o.LabelKey)
		}
	}
	if o.Prune && o.Heketi == nil {
		return errors.New("prune needs a heketi server, to check that no bricks remain on a Node")
	}
	return nil
}

// Action is what Label did, or would do, to a Node.
type Action string

// Actions.
const (
	Labelled   Action = "labelled"
	Unchanged  Action = "unchanged"
	WouldLabel Action = "would-label"
	// Kept: a stale Node reported but left alone (no prune asked).
	Kept       Action = "kept"
	Pruned     Action = "pruned"
	WouldPrune Action = "would-prune"
	// Refused: prune asked, but heketi still holds bricks on the Node.
	Refused Action = "refused"
)

// LabelledNode is a matched Node and what was done to it.
type LabelledNode struct {
	Match
	Action Action `json:"action"`
}

// Brick is a heketi brick that pins a Node to the storage pool.
type Brick struct {
	ID     string `json:"id"`
	Volume string `json:"volume"`
	Device string `json:"device"`
	// HeketiNode is the heketi node id holding the device.
	HeketiNode string `json:"heketiNode"`
}

// Stale is a Node that carries the storage label but is no longer in the
// topology.
type Stale struct {
	Node   string  `json:"node"`
	Action Action  `json:"action"`
	Bricks []Brick `json:"bricks,omitempty"`
}

// Result is what Label did.
type Result struct {
	Label     string         `json:"label"`
	ZoneLabel string         `json:"zoneLabel,omitempty"`
	DryRun    bool           `json:"dryRun,omitempty"`
	Nodes     []LabelledNode `json:"nodes"`
	Unmatched []Unmatched    `json:"unmatched,omitempty"`
	Ambiguous []Ambiguous    `json:"ambiguous,omitempty"`
	Stale     []Stale        `json:"stale,omitempty"`
}

// Problems reports whether anything needs the user: topology nodes without
// a clear match, or a prune refused.
func (r *Result) Problems() bool {
	if len(r.Unmatched) > 0 || len(r.Ambiguous) > 0 {
		return true
	}
	for _, s := range r.Stale {
		if s.Action == Refused {
			return true
		}
	}
	return false
}

// Label matches topo to the cluster's Nodes and labels the clear matches as
// storage nodes with their zone. It is idempotent: Nodes already labelled
// are not written. Errors from individual patches are joined; the Result
// still says what succeeded.
func Label(ctx context.Context, client kubernetes.Interface, topo *topology.Topology, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if topo == nil {
		return nil, errors.New("no topology")
	}
	logger := klog.FromContext(ctx)
	nodes, err := listNodes(ctx, client, opts.Lister)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	byName := map[string]*corev1.Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}

	m := MatchNodes(topo, nodes)
	res := &Result{
		Label:     opts.LabelKey + "=" + opts.LabelValue,
		ZoneLabel: opts.ZoneLabel,
		DryRun:    opts.DryRun,
		Unmatched: m.Unmatched,
		Ambiguous: m.Ambiguous,
	}

	// Nodes labelled as storage nodes that no topology node refers to any
	// more. Candidates of an ambiguous match are not stale: the topology
	// still names them, it only needs fixing.
	inTopology := map[string]bool{}
	for _, mt := range m.Matches {
		inTopology[mt.Node] = true
	}
	for _, a := range m.Ambiguous {
		for _, c := range a.Candidates {
			inTopology[c] = true
		}
	}
	var stale []*corev1.Node
	for i := range nodes {
		n := &nodes[i]
		if v, ok := n.Labels[opts.LabelKey]; ok && v == opts.LabelValue && !inTopology[n.Name] {
			stale = append(stale, n)
		}
	}

	// Ask heketi before changing anything, so a heketi failure leaves the
	// cluster as it was.
	var bricks map[string][]Brick
	if opts.Prune && len(stale) > 0 {
		info, err := opts.Heketi.TopologyInfo(ctx)
		if err != nil {
			return nil, fmt.Errorf("ask heketi which nodes hold bricks before pruning (nothing was changed): %w", err)
		}
		bricks = bricksByNode(info, stale)
	}

	var errs []error
	for _, mt := range m.Matches {
		n := byName[mt.Node]
		want := map[string]*string{opts.LabelKey: &opts.LabelValue}
		if opts.ZoneLabel != "" {
			z := strconv.Itoa(mt.Zone)
			want[opts.ZoneLabel] = &z
		}
		ln := LabelledNode{Match: mt, Action: Unchanged}
		if !labelsAre(n, want) {
			ln.Action = WouldLabel
			if !opts.DryRun {
				if err := patchLabels(ctx, client, n.Name, want); err != nil {
					errs = append(errs, err)
					res.Nodes = append(res.Nodes, LabelledNode{Match: mt, Action: Unchanged})
					continue
				}
				ln.Action = Labelled
				logger.V(1).Info("Labelled storage node", "node", klog.KObj(n), "topologyNode", mt.Topology, "by", mt.By, "zone", mt.Zone)
			}
		}
		res.Nodes = append(res.Nodes, ln)
	}

	for _, n := range stale {
		s := Stale{Node: n.Name, Action: Kept}
		if opts.Prune {
			s.Bricks = bricks[n.Name]
			switch {
			case len(s.Bricks) > 0:
				s.Action = Refused
			case opts.DryRun:
				s.Action = WouldPrune
			default:
				remove := map[string]*string{opts.LabelKey: nil}
				if opts.ZoneLabel != "" {
					if _, ok := n.Labels[opts.ZoneLabel]; ok {
						remove[opts.ZoneLabel] = nil
					}
				}
				if err := patchLabels(ctx, client, n.Name, remove); err != nil {
					errs = append(errs, err)
				} else {
					s.Action = Pruned
					logger.V(1).Info("Removed storage label", "node", klog.KObj(n))
				}
			}
		}
		res.Stale = append(res.Stale, s)
	}
	return res, errors.Join(errs...)
}

// listNodes reads the Nodes from lister when there is one, else from the
// API server. Objects from a lister are shared with its cache: they are
// copied here and only read.
func listNodes(ctx context.Context, client kubernetes.Interface, lister corelisters.NodeLister) ([]corev1.Node, error) {
	if lister != nil {
		cached, err := lister.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("list Nodes from the informer cache: %w", err)
		}
		out := make([]corev1.Node, len(cached))
		for i, n := range cached {
			out[i] = *n
		}
		return out, nil
	}
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	return list.Items, nil
}

// labelsAre reports whether n already carries want (nil = absent).
func labelsAre(n *corev1.Node, want map[string]*string) bool {
	for k, v := range want {
		cur, ok := n.Labels[k]
		if v == nil && ok || v != nil && (!ok || cur != *v) {
			return false
		}
	}
	return true
}

// patchLabels sets (or, for nil values, removes) labels with a JSON merge
// patch that names only these keys.
func patchLabels(ctx context.Context, client kubernetes.Interface, node string, labels map[string]*string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("patch labels of Node %s: %w", node, err)
	}
	return nil
}
