package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The API server reaches nodes (container logs, exec, port-forward, the
// node and pod proxies) through its "cluster" egress selector, set to an
// HTTP CONNECT proxy on a unix socket that this file serves. Kubernetes
// clusters whose nodes sit in another network than the control plane do
// the same (Konnectivity). Here it lets the API server, which listens on the
// host's 127.0.0.1, reach a real node's kubelet, which listens on the node's
// own address inside the node's network namespace: the proxy dials that
// address from inside the namespace. Loopback targets (kwok's kubelet
// server) are dialled directly; any other address is refused, so the API
// server never sends traffic off this machine.

const egressSelectorConfig = `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`

// egressProxy is the API server's "cluster" egress.
type egressProxy struct {
	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	routes map[string]egressRoute // by node address and by node name
}

// egressRoute is where a real node is: its address inside its network
// namespace. The API server names a node by its InternalIP address first
// (kube.go sets --kubelet-preferred-address-types as kubeadm does); by name
// (the API server's default order) the proxy resolves it, as Konnectivity
// does.
type egressRoute struct {
	ip     string
	nsPath string
}

func startEgressProxy(sock string) (*egressProxy, error) {
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	p := &egressProxy{ln: ln, routes: map[string]egressRoute{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.connect), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// route sends connections to a node, by name or address, into the network
// namespace at nsPath ("" removes the route).
func (p *egressProxy) route(name, ip, nsPath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if nsPath == "" {
		delete(p.routes, name)
		delete(p.routes, ip)
		return
	}
	p.routes[name] = egressRoute{ip: ip, nsPath: nsPath}
	p.routes[ip] = egressRoute{ip: ip, nsPath: nsPath}
}

func (p *egressProxy) connect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "testenv egress proxy: only CONNECT", http.StatusMethodNotAllowed)
		return
	}
	// The API server writes the target in the request line and
	// "Host: 127.0.0.1" as header: take the request line's.
	target := r.URL.Host
	if target == "" {
		target = r.Host
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		http.Error(w, fmt.Sprintf("testenv egress proxy: target %q is not host:port", target), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	route, ok := p.routes[host]
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var up net.Conn
	switch ip := net.ParseIP(host); {
	case ok:
		up, err = dialInNetNS(ctx, route.nsPath, net.JoinHostPort(route.ip, port))
	case ip != nil && ip.IsLoopback():
		var d net.Dialer
		up, err = d.DialContext(ctx, "tcp", target)
	default:
		http.Error(w, fmt.Sprintf("testenv egress proxy: %s is neither loopback nor a real node", host), http.StatusForbidden)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("testenv egress proxy: dial %s: %v", target, err), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "testenv egress proxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	down, rw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		up.Close()
		down.Close()
		return
	}
	pipe(bufferedConn{down, rw.Reader}, up)
}

// bufferedConn reads what the HTTP server had already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite half-closes the unix socket under it.
func (c bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (p *egressProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	_ = p.srv.Close()
}
