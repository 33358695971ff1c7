package mounter

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/unixsock"
)

// Server serves a Mounter (a Local, in practice) on a unix socket.
type Server struct {
	m       Mounter
	version string
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
}

// maxBody bounds a request body: a mount request is a few hundred bytes.
const maxBody = 64 << 10

// NewServer listens on endpoint (unix:///path.sock, mode 0600: whoever can
// reach the socket can mount, so only root may) and returns a Server that
// Serve starts.
func NewServer(endpoint string, m Mounter, version string) (*Server, error) {
	ln, err := unixsock.Listen(endpoint, 0o600)
	if err != nil {
		return nil, err
	}
	s := &Server{m: m, version: version, ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathInfo, s.info)
	mux.HandleFunc("POST "+pathMount, s.mount)
	mux.HandleFunc("POST "+pathUnmount, s.unmount)
	mux.HandleFunc("GET "+pathHealth, s.health)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then stops accepting calls and waits (up
// to 10 s) for those in flight. The FUSE clients are not touched: they
// live as long as this process does.
func (s *Server) Serve(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	logger.Info("Mount service listening", "endpoint", s.Addr(), "protocol", ProtocolVersion)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-errc
	return err
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Info{Protocol: ProtocolVersion, Version: s.version})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if err := s.m.Probe(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) mount(w http.ResponseWriter, r *http.Request) {
	var call MountCall
	if !decode(w, r, &call) {
		return
	}
	ctx, cancel := callContext(r.Context(), call.TimeoutMillis)
	defer cancel()
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("target", call.Target))
	writeResult(w, s.m.Mount(ctx, call.MountRequest))
}

func (s *Server) unmount(w http.ResponseWriter, r *http.Request) {
	var call UnmountCall
	if !decode(w, r, &call) {
		return
	}
	ctx, cancel := callContext(r.Context(), call.TimeoutMillis)
	defer cancel()
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("target", call.Target))
	writeResult(w, s.m.Unmount(ctx, call.Target))
}

// callContext bounds a call by the caller's timeout. The request's own
// context also ends when the caller hangs up.
func callContext(ctx context.Context, timeoutMillis int64) (context.Context, context.CancelFunc) {
	if timeoutMillis > 0 {
		return context.WithTimeout(ctx, time.Duration(timeoutMillis)*time.Millisecond)
	}
	return context.WithCancel(ctx)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Code: Invalid, Message: "malformed request: " + err.Error()})
		return false
	}
	return true
}

var statusOf = map[Code]int{
	Invalid:     http.StatusBadRequest,
	Busy:        http.StatusConflict,
	Timeout:     http.StatusGatewayTimeout,
	NotFound:    http.StatusNotFound,
	Unavailable: http.StatusServiceUnavailable,
	Failed:      http.StatusInternalServerError,
}

func writeResult(w http.ResponseWriter, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	code := CodeOf(err)
	writeJSON(w, statusOf[code], Error{Code: code, Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
