package heketi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultPollMin     = 2 * time.Millisecond
	DefaultPollMax     = 400 * time.Millisecond
	DefaultRetries     = 8
	DefaultRetryMin    = 25 * time.Millisecond
	DefaultRetryMax    = 2 * time.Second
	DefaultMaxInflight = 8
)

// Config says how to reach one heketi server.
type Config struct {
	// URL of the heketi server, e.g. http://heketi.glusterfs:8080.
	URL string
	// User and Key for heketi's JWT auth; both empty when auth is disabled.
	User, Key string
	// Timeout bounds each call, including the wait for an asynchronous
	// operation to finish. Zero means DefaultTimeout.
	Timeout time.Duration
	// PollMin and PollMax bound the adaptive poll of pending operations.
	PollMin, PollMax time.Duration
	// Retries is how many times a transient failure (429, 503, connection
	// refused; 502 and 504 only for reads, since a proxy may have passed a
	// write on) is retried; RetryMin/RetryMax bound the backoff.
	// Negative Retries disables retrying.
	Retries            int
	RetryMin, RetryMax time.Duration
	// MaxInflight caps the calls this client has in flight at once (heketi's
	// own max_inflight_operations is 8). Zero means no cap.
	MaxInflight int
	// InsecureSkipVerify and CAFile configure TLS for https URLs.
	InsecureSkipVerify bool
	CAFile             string
	// Observe, when set, is called after every call with its operation
	// name, duration and error (metrics hook).
	Observe func(op string, d time.Duration, err error)
}

// Client is a context-aware heketi client. It is safe for concurrent use.
type Client struct {
	cfg       Config
	http      *http.Client
	transport *http.Transport
	sem       chan struct{}
}

// New validates cfg and returns a client. It makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("no heketi server: set " + SettingURL)
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("heketi URL %q must start with http:// or https://", cfg.URL)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = DefaultPollMin
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = DefaultPollMax
		if cfg.PollMax < cfg.PollMin {
			cfg.PollMax = cfg.PollMin
		}
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = DefaultRetryMax
		if cfg.RetryMax < cfg.RetryMin {
			cfg.RetryMax = cfg.RetryMin
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = cfg.Timeout
	if strings.HasPrefix(cfg.URL, "https://") {
		tlsCfg := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the user asked for it
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read heketi CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("heketi CA file %s holds no PEM certificate", cfg.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
	}
	c := &Client{cfg: cfg, transport: tr, http: &http.Client{Transport: tr}}
	if cfg.MaxInflight > 0 {
		c.sem = make(chan struct{}, cfg.MaxInflight)
	}
	return c, nil
}

// URL returns the server URL the client talks to.
func (c *Client) URL() string { return c.cfg.URL }

// User returns the heketi user the client authenticates as.
func (c *Client) User() string { return c.cfg.User }

// Close releases idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Do runs fn with an upstream go-client bound to ctx and the per-call
// timeout: every HTTP request fn makes is cancelled with ctx, polled and
// retried as the package doc says. op names the call in errors and metrics.
func (c *Client) Do(ctx context.Context, op string, fn func(*client.Client) error) (err error) {
	start := time.Now()
	defer func() {
		if c.cfg.Observe != nil {
			c.cfg.Observe(op, time.Since(start), err)
		}
	}()
	if c.sem != nil {
		select {
		case c.sem <- struct{}{}:
			defer func() { <-c.sem }()
		case <-ctx.Done():
			return &Error{Op: op, Err: ctx.Err()}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	p := &performer{ctx: ctx, c: c}
	upstream := client.NewClientWithOptions(c.cfg.URL, c.cfg.User, c.cfg.Key, client.ClientOptions{
		// Retries and polling are done by performer, so the upstream client
		// never sleeps seconds on a 429 nor polls at a fixed 400 ms.
		RetryEnabled: false,
		PollDelay:    int(c.cfg.PollMin / time.Millisecond),
	})
	upstream.SetClientFunc(func(_ *tls.Config, redirect client.CheckRedirectFunc) (client.HttpPerformer, error) {
		p.redirect = redirect
		return p, nil
	})
	if err := fn(upstream); err != nil {
		return classify(op, err, p.lastStatus, ctx)
	}
	return nil
}

// classify turns an upstream error into an *Error carrying the HTTP status
// heketi answered with (if any) and whether the context ended.
func classify(op string, err error, status int, ctx context.Context) error {
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	e := &Error{Op: op, Status: status, Message: err.Error(), Err: err}
	if ctxErr := ctx.Err(); ctxErr != nil {
		e.Err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		e.Status = 0
	}
	return e
}

// Hello checks that the server answers.
func (c *Client) Hello(ctx context.Context) error {
	return c.Do(ctx, "hello", func(h *client.Client) error { return h.Hello() })
}

// ClusterCreate creates a cluster.
func (c *Client) ClusterCreate(ctx context.Context, req *api.ClusterCreateRequest) (out *api.ClusterInfoResponse, err error) {
	err = c.Do(ctx, "cluster_create", func(h *client.Client) (e error) { out, e = h.ClusterCreate(req); return })
	return
}

// ClusterInfo returns one cluster.
func (c *Client) ClusterInfo(ctx context.Context, id string) (out *api.ClusterInfoResponse, err error) {
	err = c.Do(ctx, "cluster_info", func(h *client.Client) (e error) { out, e = h.ClusterInfo(id); return })
	return
}

// ClusterList lists cluster ids.
func (c *Client) ClusterList(ctx context.Context) (out *api.ClusterListResponse, err error) {
	err = c.Do(ctx, "cluster_list", func(h *client.Client) (e error) { out, e = h.ClusterList(); return })
	return
}

// ClusterSetFlags sets whether a cluster takes file and block volumes.
func (c *Client) ClusterSetFlags(ctx context.Context, id string, req *api.ClusterSetFlagsRequest) error {
	return c.Do(ctx, "cluster_set_flags", func(h *client.Client) error { return h.ClusterSetFlags(id, req) })
}

// PendingOperationList lists heketi's pending operations (admin only).
func (c *Client) PendingOperationList(ctx context.Context) (out *api.PendingOperationListResponse, err error) {
	err = c.Do(ctx, "pending_operation_list", func(h *client.Client) (e error) { out, e = h.PendingOperationList(); return })
	return
}

// PendingOperationDetails returns one pending operation with the objects
// it changes.
func (c *Client) PendingOperationDetails(ctx context.Context, id string) (out *api.PendingOperationDetails, err error) {
	err = c.Do(ctx, "pending_operation_details", func(h *client.Client) (e error) { out, e = h.PendingOperationDetails(id); return })
	return
}

// ClusterDelete deletes an empty cluster.
func (c *Client) ClusterDelete(ctx context.Context, id string) error {
	return c.Do(ctx, "cluster_delete", func(h *client.Client) error { return h.ClusterDelete(id) })
}

// NodeAdd adds a node to a cluster (heketi peer-probes it).
func (c *Client) NodeAdd(ctx context.Context, req *api.NodeAddRequest) (out *api.NodeInfoResponse, err error) {
	err = c.Do(ctx, "node_add", func(h *client.Client) (e error) { out, e = h.NodeAdd(req); return })
	return
}

// NodeInfo returns one node.
func (c *Client) NodeInfo(ctx context.Context, id string) (out *api.NodeInfoResponse, err error) {
	err = c.Do(ctx, "node_info", func(h *client.Client) (e error) { out, e = h.NodeInfo(id); return })
	return
}

// NodeDelete deletes a node that holds no devices.
func (c *Client) NodeDelete(ctx context.Context, id string) error {
	return c.Do(ctx, "node_delete", func(h *client.Client) error { return h.NodeDelete(id) })
}

// NodeState sets a node online, offline or failed.
func (c *Client) NodeState(ctx context.Context, id string, req *api.StateRequest) error {
	return c.Do(ctx, "node_state", func(h *client.Client) error { return h.NodeState(id, req) })
}

// NodeSetTags sets, updates or deletes a node's tags.
func (c *Client) NodeSetTags(ctx context.Context, id string, req *api.TagsChangeRequest) error {
	return c.Do(ctx, "node_set_tags", func(h *client.Client) error { return h.NodeSetTags(id, req) })
}

// DeviceAdd adds a device to a node.
func (c *Client) DeviceAdd(ctx context.Context, req *api.DeviceAddRequest) error {
	return c.Do(ctx, "device_add", func(h *client.Client) error { return h.DeviceAdd(req) })
}

// DeviceInfo returns one device.
func (c *Client) DeviceInfo(ctx context.Context, id string) (out *api.DeviceInfoResponse, err error) {
	err = c.Do(ctx, "device_info", func(h *client.Client) (e error) { out, e = h.DeviceInfo(id); return })
	return
}

// DeviceDelete deletes a device that holds no bricks.
func (c *Client) DeviceDelete(ctx context.Context, id string) error {
	return c.Do(ctx, "device_delete", func(h *client.Client) error { return h.DeviceDelete(id) })
}

// DeviceState sets a device online, offline or failed.
func (c *Client) DeviceState(ctx context.Context, id string, req *api.StateRequest) error {
	return c.Do(ctx, "device_state", func(h *client.Client) error { return h.DeviceState(id, req) })
}

// TopologyInfo returns every cluster, node, device and volume.
func (c *Client) TopologyInfo(ctx context.Context) (out *api.TopologyInfoResponse, err error) {
	// heketi has no topology snapshot: the go-client lists clusters and
	// reads every node, device and volume one by one, so an object deleted
	// in between answers 404. Such a read is stale, not failed: read again.
	for attempt := 0; ; attempt++ {
		err = c.Do(ctx, "topology_info", func(h *client.Client) (e error) { out, e = h.TopologyInfo(); return })
		if err == nil || !IsNotFound(err) || attempt == topologyRereads || ctx.Err() != nil {
			return out, err
		}
	}
}

// topologyRereads bounds the re-reads of a topology that changed while it
// was read.
const topologyRereads = 5

// VolumeCreate creates a volume and waits for it to exist.
func (c *Client) VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (out *api.VolumeInfoResponse, err error) {
	err = c.Do(ctx, "volume_create", func(h *client.Client) (e error) { out, e = h.VolumeCreate(req); return })
	return
}

// VolumeInfo returns one volume.
func (c *Client) VolumeInfo(ctx context.Context, id string) (out *api.VolumeInfoResponse, err error) {
	err = c.Do(ctx, "volume_info", func(h *client.Client) (e error) { out, e = h.VolumeInfo(id); return })
	return
}

// VolumeList lists volume ids.
func (c *Client) VolumeList(ctx context.Context) (out *api.VolumeListResponse, err error) {
	err = c.Do(ctx, "volume_list", func(h *client.Client) (e error) { out, e = h.VolumeList(); return })
	return
}

// VolumeDelete deletes a volume and its bricks.
func (c *Client) VolumeDelete(ctx context.Context, id string) error {
	return c.Do(ctx, "volume_delete", func(h *client.Client) error { return h.VolumeDelete(id) })
}

// VolumeClone makes a copy of a volume (a snapshot clone: it shares the
// source's bricks' devices, size, durability and GID) named req.Name.
func (c *Client) VolumeClone(ctx context.Context, id string, req *api.VolumeCloneRequest) (out *api.VolumeInfoResponse, err error) {
	err = c.Do(ctx, "volume_clone", func(h *client.Client) (e error) { out, e = h.VolumeClone(id, req); return })
	return
}

// VolumeExpand grows a volume by req.Size GiB.
func (c *Client) VolumeExpand(ctx context.Context, id string, req *api.VolumeExpandRequest) (out *api.VolumeInfoResponse, err error) {
	err = c.Do(ctx, "volume_expand", func(h *client.Client) (e error) { out, e = h.VolumeExpand(id, req); return })
	return
}
