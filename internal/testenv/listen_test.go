package testenv_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestComponentsListenOnLoopbackOnly checks every listening TCP socket of
// every component (etcd, the control plane, kwok, heketi) is bound to
// 127.0.0.1.
func TestComponentsListenOnLoopbackOnly(t *testing.T) {
	testenv.Get(t)
	listeners := map[string]string{} // socket inode -> local address
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			listeners[fields[9]] = decodeAddr(fields[1])
		}
		file.Close()
	}
	seen := 0
	for name, pid := range testenv.Pids() {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
			addr, ok := listeners[inode]
			if !ok {
				continue
			}
			seen++
			host, _, _ := net.SplitHostPort(addr)
			if host != "127.0.0.1" {
				t.Errorf("%s listens on %s, want 127.0.0.1 only", name, addr)
			}
		}
	}
	if seen < 6 {
		t.Fatalf("found only %d listening sockets of the components; the check is not seeing them", seen)
	}
}

// decodeAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080".
func decodeAddr(s string) string {
	hostHex, portHex, _ := strings.Cut(s, ":")
	b, _ := hex.DecodeString(hostHex)
	port, _ := strconv.ParseUint(portHex, 16, 16)
	// The kernel prints each 32-bit word in host (little-endian) order.
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip := net.IP(b)
	if ip4 := ip.To4(); ip4 != nil && len(b) == 16 && !ip.IsUnspecified() {
		ip = ip4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
