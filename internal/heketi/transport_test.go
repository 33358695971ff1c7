package heketi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jwt "github.com/form3tech-oss/jwt-go"
	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// fakeServer speaks heketi's async protocol: POST answers 202 with a
// /queue location that stays pending for `pending` polls, then redirects.
type fakeServer struct {
	pending    int32
	polls      atomic.Int32
	posts      atomic.Int32
	postStatus []int // statuses answered to the first POSTs
	key        string
}

func (f *fakeServer) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	check := func(r *http.Request) bool {
		if f.key == "" {
			return true
		}
		raw := strings.TrimPrefix(r.Header.Get("Authorization"), "bearer ")
		tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return []byte(f.key), nil })
		return err == nil && tok.Valid
	}
	mux.HandleFunc("POST /nodes", func(w http.ResponseWriter, r *http.Request) {
		n := int(f.posts.Add(1))
		if n <= len(f.postStatus) {
			http.Error(w, "busy", f.postStatus[n-1])
			return
		}
		w.Header().Set("Location", "/queue/abc")
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /queue/abc", func(w http.ResponseWriter, r *http.Request) {
		if !check(r) {
			http.Error(w, "token is expired", http.StatusUnauthorized)
			return
		}
		if f.polls.Add(1) <= f.pending {
			w.Header().Set("X-Pending", "true")
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "/nodes/n1", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /nodes/n1", func(w http.ResponseWriter, r *http.Request) {
		var info api.NodeInfoResponse
		info.Id = "n1"
		_ = json.NewEncoder(w).Encode(info)
	})
	return mux
}

func newTestClient(t *testing.T, url string, cfg Config) *Client {
	t.Helper()
	cfg.URL = url
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestPollsPendingOperations(t *testing.T) {
	f := &fakeServer{pending: 5}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	start := time.Now()
	info, err := c.NodeAdd(context.Background(), &api.NodeAddRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Id != "n1" || f.polls.Load() != 6 {
		t.Errorf("id %q after %d polls, want n1 after 6", info.Id, f.polls.Load())
	}
	// 2+4+7+11+17 ms of waits: far from upstream's 5 × 400 ms.
	if d := time.Since(start); d > time.Second {
		t.Errorf("5 pending polls took %v", d)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantErr   bool
		wantPosts int32
	}{
		{"429 then success", []int{429, 429}, false, 3},
		{"503 then success", []int{503}, false, 2},
		{"502 on a POST is not retried: the proxy may have passed it on", []int{502}, true, 1},
		{"504 on a POST is not retried", []int{504}, true, 1},
		{"400 is not retried", []int{400}, true, 1},
		{"429 beyond the retries fails", []int{429, 429, 429, 429}, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{postStatus: tc.statuses}
			srv := httptest.NewServer(f.handler(t))
			defer srv.Close()
			c := newTestClient(t, srv.URL, Config{Retries: 2, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
			_, err := c.NodeAdd(context.Background(), &api.NodeAddRequest{})
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := f.posts.Load(); got != tc.wantPosts {
				t.Errorf("POSTs = %d, want %d", got, tc.wantPosts)
			}
			if err != nil {
				var he *Error
				if !asErrorOK(err, &he) || he.Status != tc.statuses[min(int(tc.wantPosts), len(tc.statuses))-1] {
					t.Errorf("error %v does not carry the status", err)
				}
			}
		})
	}
}

func asErrorOK(err error, he **Error) bool {
	*he = asError(err)
	return *he != nil
}

func TestPollsAreSignedWithTheKey(t *testing.T) {
	f := &fakeServer{pending: 3, key: "secret"}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{User: "admin", Key: "secret"})
	if _, err := c.NodeAdd(context.Background(), &api.NodeAddRequest{}); err != nil {
		t.Fatalf("signed polls rejected: %v", err)
	}
	c2 := newTestClient(t, srv.URL, Config{User: "admin", Key: "wrong"})
	if _, err := c2.NodeAdd(context.Background(), &api.NodeAddRequest{}); err == nil || !IsUnauthorized(err) {
		t.Errorf("wrong key: err = %v, want unauthorized", err)
	}
}

func TestTimeoutIsUncertain(t *testing.T) {
	f := &fakeServer{pending: 1 << 30}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{Timeout: 50 * time.Millisecond})
	_, err := c.NodeAdd(context.Background(), &api.NodeAddRequest{})
	if !IsTimeout(err) || !IsTransient(err) {
		t.Errorf("err = %v, want a timeout", err)
	}
}

// A volume deleted while the topology is read answers 404 to the go-client's
// per-object read: TopologyInfo reads again instead of failing.
func TestTopologyInfoRereadsAfterConcurrentDelete(t *testing.T) {
	var volumeReads int
	mux := http.NewServeMux()
	mux.HandleFunc("/clusters", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"clusters":["c1"]}`))
	})
	mux.HandleFunc("/clusters/c1", func(w http.ResponseWriter, _ *http.Request) {
		vols := `["v1"]`
		if volumeReads > 0 {
			vols = `[]` // deleted meanwhile
		}
		_, _ = w.Write([]byte(`{"id":"c1","nodes":[],"volumes":` + vols + `,"block":true,"file":true}`))
	})
	mux.HandleFunc("/volumes/v1", func(w http.ResponseWriter, _ *http.Request) {
		volumeReads++
		http.Error(w, "Id not found", http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	topo, err := c.TopologyInfo(context.Background())
	if err != nil {
		t.Fatalf("TopologyInfo: %v", err)
	}
	if len(topo.ClusterList) != 1 || len(topo.ClusterList[0].Volumes) != 0 || volumeReads != 1 {
		t.Fatalf("got %+v after %d volume reads", topo, volumeReads)
	}
}
