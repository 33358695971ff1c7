package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/daemonset"
	"github.com/glusterkube/glusterkube/internal/workers"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

// Event reasons on the topology ConfigMap.
const (
	ReasonInvalidTopology = "InvalidTopology"
	ReasonLoadFailed      = "TopologyLoadFailed"
	ReasonLoaded          = "TopologyLoaded"
	ReasonLabelFailed     = "NodeLabelFailed"
	ReasonNodesLabelled   = "NodesLabelled"
	ReasonDaemonSetFailed = "DaemonSetApplyFailed"
	ReasonDaemonSet       = "DaemonSetApplied"
	ReasonNoTopologyKey   = "NoTopology"
	// ReasonZonesDisagree: heketi's zones disagree with the Nodes' zone
	// labels (and heketi is not to follow them).
	ReasonZonesDisagree = "ZonesDisagree"
	// ReasonZonesFollowed: heketi's zones were brought in step with the
	// Nodes' (tags set, empty nodes re-added).
	ReasonZonesFollowed = "ZonesFollowNodes"
	// ReasonZonesRefused: a zone change was refused (a node with bricks in
	// the wrong heketi zone) or failed.
	ReasonZonesRefused = "ZoneChangeRefused"
)

// SyncTimeout bounds one reconcile.
var SyncTimeout = 5 * time.Minute

// TopologyKeys are the ConfigMap keys read, in this order.
var TopologyKeys = []string{"topology.json", "topology.yaml", "topology.yml"}

// Heketi is what the controller needs from heketi.
type Heketi interface {
	topology.Heketi
	zones.Heketi
}

// Config configures the controller.
type Config struct {
	Kube   kubernetes.Interface
	Heketi Heketi
	// Namespace and Name of the ConfigMap holding the topology.
	Namespace, Name string
	// Nodes configures labelling (label key/value, zone label, prune).
	Nodes nodes.Options
	// DaemonSet, when set, is applied after the nodes are labelled.
	DaemonSet *daemonset.Manifest
	// Load tunes the topology load.
	Load topology.Options
	// ZonesFromNodes makes heketi's zones follow the Nodes' zone labels
	// (package zones: numbers of new and empty nodes, zone tags); without
	// it, disagreements are only reported, in Warning Events.
	ZonesFromNodes bool
	// Recorder records Events on the ConfigMap.
	Recorder record.EventRecorder
}

const queueKey = "topology"

// Controller reconciles one topology ConfigMap.
type Controller struct {
	cfg        Config
	queue      workqueue.TypedRateLimitingInterface[string]
	cmLister   corelisters.ConfigMapLister
	nodeLister corelisters.NodeLister
	synced     []cache.InformerSynced
	// last holds the outcome of the last reconcile, for /readyz and tests.
	last chan error
}

// New builds a controller on informers from the two factories: cmFactory
// must be scoped to cfg.Namespace; nodeFactory is cluster-wide.
func New(cfg Config, cmFactory, nodeFactory informers.SharedInformerFactory) (*Controller, error) {
	if cfg.Kube == nil || cfg.Heketi == nil || cfg.Recorder == nil {
		return nil, errors.New("controller: Kube, Heketi and Recorder are required")
	}
	if cfg.Namespace == "" || cfg.Name == "" {
		return nil, errors.New("controller: the topology ConfigMap's namespace and name are required")
	}
	c := &Controller{
		cfg: cfg,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "glusterkube-topology"}),
		last: make(chan error, 1),
	}
	cms := cmFactory.Core().V1().ConfigMaps()
	c.cmLister = cms.Lister()
	enqueueCM := func(obj any) {
		if o, ok := obj.(*corev1.ConfigMap); ok && o.Name != cfg.Name {
			return
		}
		c.queue.Add(queueKey)
	}
	if _, err := cms.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueCM,
		UpdateFunc: func(_, obj any) { enqueueCM(obj) },
		DeleteFunc: enqueueCM,
	}); err != nil {
		return nil, err
	}
	c.nodeLister = nodeFactory.Core().V1().Nodes().Lister()
	nodeInf := nodeFactory.Core().V1().Nodes().Informer()
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.queue.Add(queueKey) },
		DeleteFunc: func(any) { c.queue.Add(queueKey) },
		// Kubelets update Node status all the time; only a change of
		// what matching and labelling look at is worth a reconcile.
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			if !ok1 || !ok2 || !reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Status.Addresses, n.Status.Addresses) {
				c.queue.Add(queueKey)
			}
		},
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{cms.Informer().HasSynced, nodeInf.HasSynced}
	return c, nil
}

// Run processes the queue until ctx ends. Start the factories first.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		c.queue.ShutDown()
		return errors.New("controller: informer caches did not sync")
	}
	klog.FromContext(ctx).Info("Storage controller started", "configMap", klog.KRef(c.cfg.Namespace, c.cfg.Name))
	c.queue.Add(queueKey)
	workers.Loop{
		Queue: c.queue, Synced: c.synced, Workers: 1, Sync: c.syncKey,
		Failed: "Reconcile failed; retrying with backoff", KeyName: "configMap",
	}.Run(ctx)
	return nil
}

// Enqueue asks for a reconcile, e.g. on a resync timer, so drift in heketi
// (which has no watch) is noticed.
func (c *Controller) Enqueue() { c.queue.Add(queueKey) }

// Synced returns a channel that receives the outcome of each reconcile
// (dropped when nobody reads it).
func (c *Controller) Synced() <-chan error { return c.last }

// syncKey runs one reconcile for the queue and hands its outcome to
// Synced. A reconcile never hangs the queue: heketi calls have their own
// deadlines; this bounds the API calls and the whole pass.
func (c *Controller) syncKey(ctx context.Context, _ string) error {
	sctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	err := c.Sync(sctx)
	cancel()
	select {
	case c.last <- err:
	default:
		select { // keep only the newest outcome
		case <-c.last:
		default:
		}
		select {
		case c.last <- err:
		default:
		}
	}
	return err
}

// Sync reconciles once: load the topology into heketi, label the nodes,
// apply the DaemonSet.
func (c *Controller) Sync(ctx context.Context) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "configMap", klog.KRef(c.cfg.Namespace, c.cfg.Name))
	cm, err := c.cmLister.ConfigMaps(c.cfg.Namespace).Get(c.cfg.Name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("Topology ConfigMap not found; waiting for it")
		return nil
	}
	if err != nil {
		return err
	}
	key, data := "", ""
	for _, k := range TopologyKeys {
		if d, ok := cm.Data[k]; ok {
			key, data = k, d
			break
		}
	}
	if key == "" {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonNoTopologyKey,
			"ConfigMap has none of the keys %s: put the heketi topology file under one of them", strings.Join(TopologyKeys, ", "))
		return nil
	}
	topo, diags, err := topology.Load(key, []byte(data))
	if err != nil {
		var msgs []string
		for _, d := range diags {
			if d.Severity == topology.Error {
				msgs = append(msgs, d.String())
			}
		}
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonInvalidTopology,
			"Nothing was sent to heketi; fix the topology: %s", truncate(strings.Join(msgs, "; "), 900))
		logger.Info("Topology is invalid; nothing sent to heketi", "problems", len(msgs))
		return nil
	}

	// Zones first: heketi's zones checked against the Nodes' labels (from
	// the informer), and made to follow them when configured — which also
	// rewrites the topology's zones before it is planned.
	kubeNodes, err := c.listNodes()
	if err != nil {
		return err
	}
	zout, zerr := zones.Reconcile(ctx, c.cfg.Heketi, topo, kubeNodes, c.cfg.ZonesFromNodes)
	if zout == nil || zout.Current == nil {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonLoadFailed, "Reading heketi's topology: %v", zerr)
		return fmt.Errorf("plan: %w", zerr)
	}
	c.zoneEvents(cm, zout)
	if zerr != nil {
		return fmt.Errorf("zones: %w", zerr)
	}
	plan := topology.PlanAgainst(topo, zout.Current)
	if counts := plan.Counts(); counts.ClustersToCreate+counts.NodesToAdd+counts.DevicesToAdd > 0 {
		report, err := topology.Apply(ctx, c.cfg.Heketi, plan, c.cfg.Load)
		if err != nil {
			c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonLoadFailed, "Loading the topology into heketi: %v", err)
			return fmt.Errorf("load: %w", err)
		}
		if fails := report.Failures(); len(fails) > 0 {
			var msgs []string
			for _, f := range fails {
				msgs = append(msgs, topology.FormatResult(f))
			}
			c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonLoadFailed, "%d heketi operation(s) failed: %s", len(fails), truncate(strings.Join(msgs, "; "), 900))
			return fmt.Errorf("load: %d operation(s) failed", len(fails))
		}
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeNormal, ReasonLoaded, "Loaded into heketi: %d cluster(s) created, %d node(s) and %d device(s) added",
			counts.ClustersToCreate, counts.NodesToAdd, counts.DevicesToAdd)
		logger.Info("Topology loaded into heketi", "clusters", counts.ClustersToCreate, "nodes", counts.NodesToAdd, "devices", counts.DevicesToAdd)
	}

	// The Nodes come from the informer this controller watches anyway,
	// not from a List per reconcile.
	nopts := c.cfg.Nodes
	nopts.Lister = c.nodeLister
	res, err := nodes.Label(ctx, c.cfg.Kube, topo, nopts)
	if err != nil {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonLabelFailed, "Labelling storage nodes: %v", err)
		return fmt.Errorf("label nodes: %w", err)
	}
	var changed []string
	for _, n := range res.Nodes {
		if n.Action != nodes.Unchanged {
			changed = append(changed, fmt.Sprintf("%s %s", n.Node, n.Action))
		}
	}
	if len(changed) > 0 {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeNormal, ReasonNodesLabelled, "Storage nodes: %s", strings.Join(changed, ", "))
	}
	for _, u := range res.Unmatched {
		logger.Info("Topology node matches no Kubernetes Node", "node", u.Topology, "path", u.Path)
	}

	if c.cfg.DaemonSet != nil {
		results, err := daemonset.Apply(ctx, c.cfg.Kube, c.cfg.DaemonSet, daemonset.ApplyOptions{})
		if err != nil {
			c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonDaemonSetFailed, "Applying the GlusterFS DaemonSet: %v", err)
			return fmt.Errorf("apply daemonset: %w", err)
		}
		for _, r := range results {
			if r.Change != daemonset.Unchanged {
				c.cfg.Recorder.Eventf(cm, corev1.EventTypeNormal, ReasonDaemonSet, "%s", r.String())
			}
		}
	}
	return nil
}

// listNodes returns the Nodes from the informer's cache.
func (c *Controller) listNodes() ([]corev1.Node, error) {
	list, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	out := make([]corev1.Node, len(list))
	for i, n := range list {
		out[i] = *n
	}
	return out, nil
}

// zoneEvents says on the ConfigMap what the zones reconcile found and did.
func (c *Controller) zoneEvents(cm *corev1.ConfigMap, o *zones.Outcome) {
	if !c.cfg.ZonesFromNodes {
		// The numbers only: zone tags matter to those who let glusterkube
		// keep them (plan lists them).
		var msgs []string
		for _, p := range o.Report.Problems {
			if p.Kind == zones.Shared || p.Kind == zones.Split {
				msgs = append(msgs, p.Message)
			}
		}
		if len(msgs) > 0 {
			c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonZonesDisagree, "Heketi's zones disagree with the Nodes' zone labels (heketi is left as it is: set %s to change it): %s", volume.SettingZonesFromNodes, truncate(strings.Join(msgs, "; "), 800))
		}
		return
	}
	var done, refused []string
	for _, ch := range o.Changes {
		if ch.Action == zones.Refused || ch.Error != "" {
			refused = append(refused, ch.String())
		} else {
			done = append(done, ch.String())
		}
	}
	if len(done) > 0 {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeNormal, ReasonZonesFollowed, "Heketi's zones follow the Nodes: %s", truncate(strings.Join(done, "; "), 900))
	}
	if len(refused) > 0 {
		c.cfg.Recorder.Eventf(cm, corev1.EventTypeWarning, ReasonZonesRefused, "%s", truncate(strings.Join(refused, "; "), 900))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
