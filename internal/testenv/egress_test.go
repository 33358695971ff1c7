package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// connectVia sends a CONNECT for target through the proxy's unix socket, as
// the API server does, and returns the status and the connection.
func connectVia(t *testing.T, sock, target string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, c
}

func TestEgressProxy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "egress.sock")
	p, err := startEgressProxy(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()

	tests := []struct {
		name   string
		target string
		status int
	}{
		{"loopback is dialled", echo.Addr().String(), http.StatusOK},
		{"an address off this machine is refused", "192.0.2.1:443", http.StatusForbidden},
		{"a name that is no real node's is refused", "node-1:10250", http.StatusForbidden},
		{"a target without a port is a bad request", "127.0.0.1", http.StatusBadRequest},
		{"a closed loopback port is a bad gateway", "127.0.0.1:1", http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, c := connectVia(t, sock, tc.target)
			defer c.Close()
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if status != http.StatusOK {
				return
			}
			fmt.Fprint(c, "ping\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ping" {
				t.Fatalf("echo through the tunnel: %q, %v", line, err)
			}
		})
	}
}
