package mounter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/glusterkube/glusterkube/internal/unixsock"
)

// Client is a Mounter that asks a mount service to mount.
type Client struct {
	endpoint string
	http     *http.Client
}

var _ Mounter = (*Client)(nil)

// probeTimeout bounds Probe when the caller's context has no deadline.
const probeTimeout = 5 * time.Second

// NewClient returns a client of the mount service at endpoint
// (unix:///path.sock). It does not connect until used.
func NewClient(endpoint string) (*Client, error) {
	path, err := unixsock.Path(endpoint)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{endpoint: endpoint, http: &http.Client{Transport: tr}}, nil
}

// Mount asks the service to mount; the service ends the mount by ctx's
// deadline.
func (c *Client) Mount(ctx context.Context, req MountRequest) error {
	return c.call(ctx, pathMount, MountCall{MountRequest: req, TimeoutMillis: timeoutMillis(ctx)})
}

// Unmount asks the service to unmount target.
func (c *Client) Unmount(ctx context.Context, target string) error {
	return c.call(ctx, pathUnmount, UnmountCall{Target: target, TimeoutMillis: timeoutMillis(ctx)})
}

// Probe checks that the service answers, speaks protocol 1 and can mount.
func (c *Client) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var info Info
	if err := c.get(ctx, pathInfo, &info); err != nil {
		return err
	}
	if info.Protocol < ProtocolVersion {
		return errorf(Unavailable, "the mount service at %s (glusterkube %s) speaks protocol %d, this plugin needs %d: upgrade the mount service (delete its pod on a drained node)", c.endpoint, info.Version, info.Protocol, ProtocolVersion)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mounter"+pathHealth, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unavailable(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		return errorf(Unavailable, "the mount service at %s cannot mount: %s", c.endpoint, bytes.TrimSpace(body))
	}
	return nil
}

// Info returns the service's protocol and version.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	err := c.get(ctx, pathInfo, &info)
	return info, err
}

func timeoutMillis(ctx context.Context) int64 {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d).Milliseconds(), 1)
	}
	return 0
}

func (c *Client) unavailable(err error) error {
	return errorf(Unavailable, "the mount service at %s does not answer: %v", c.endpoint, err)
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mounter"+path, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorf(Unavailable, "the mount service at %s answered %s to %s", c.endpoint, resp.Status, path)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return errorf(Unavailable, "the mount service at %s sent a malformed answer to %s: %v", c.endpoint, path, err)
	}
	return nil
}

func (c *Client) call(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://mounter"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errorf(Timeout, "the mount service at %s did not answer in time: %v", c.endpoint, context.Cause(ctx))
		}
		return c.unavailable(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e Error
	if err := json.Unmarshal(data, &e); err != nil || e.Code == "" {
		return errorf(Failed, "the mount service at %s answered %s: %s", c.endpoint, resp.Status, bytes.TrimSpace(data))
	}
	return &e
}

// String names the client in logs.
func (c *Client) String() string { return fmt.Sprintf("mount service %s", c.endpoint) }
