package topology

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// hintRule recognises one of heketi's common failures by its message.
type hintRule struct {
	ops      []Op // empty: any
	contains []string
	hint     func(r Result) string
}

var hintRules = []hintRule{
	{
		ops:      []Op{OpDeviceAdd},
		contains: []string{"Can't initialize physical volume", "excluded by a filter", "already contains Physical Volume", "contains a filesystem", "signature", "partition", "Device or resource busy"},
		hint: func(r Result) string {
			return fmt.Sprintf("%s on %s already holds data, a partition table or a filesystem: wipe it yourself (e.g. `wipefs -a %s` on the node), or set \"destroydata\": true for this device only if you mean to lose what is on it; then re-run load", r.Device, r.Node, r.Device)
		},
	},
	{
		ops:      []Op{OpDeviceAdd},
		contains: []string{"No such file or directory", "not found", "Failed to find device", "Cannot use"},
		hint: func(r Result) string {
			return fmt.Sprintf("check that %s exists on %s (lsblk) and is a whole, unused block device", r.Device, r.Node)
		},
	},
	{
		contains: []string{"doesn't have glusterd running", "has glusterd running"},
		hint: func(r Result) string {
			return fmt.Sprintf("glusterd does not answer on %s: the GlusterFS DaemonSet pod on that node is not ready (kubectl get pods -A -o wide --field-selector spec.nodeName=%s); wait for it or fix it, then re-run load", r.Node, r.Node)
		},
	},
	{
		contains: []string{"peer probe", "Peer probe", "Probe returned", "is already part of another cluster", "Transport endpoint is not connected"},
		hint: func(r Result) string {
			return fmt.Sprintf("gluster could not peer-probe %s from the other nodes: check its storage address is reachable from them (TCP 24007) and that it is not already in another gluster trusted pool, then re-run load", r.Node)
		},
	},
	{
		contains: []string{"already used by node with id"},
		hint: func(Result) string {
			return "heketi refuses a hostname another node holds: remove that node from heketi, or fix the file"
		},
	},
	{
		contains: []string{"Administrator access required"},
		hint: func(Result) string {
			return "topology changes need heketi's admin user: set " + heketi.SettingCredentials + " to user admin and the admin key"
		},
	},
	{
		contains: []string{"Id not found"},
		hint: func(Result) string {
			return "heketi lost track of the operation (was it restarted?); re-run load: it finds what was done"
		},
	},
}

// hint returns what to do about err, "" when there is nothing useful to say.
func hint(r Result, err error) string {
	switch {
	case heketi.IsTimeout(err):
		return "the call timed out and heketi may still finish it; re-run load (it finds what was done), or raise " + heketi.SettingTimeout + " if heketi is slow"
	case heketi.IsUnauthorized(err):
		return "heketi rejected the credentials: check " + heketi.SettingCredentials
	case refused(err) && !uncertain(err):
		return "heketi is unreachable: check " + heketi.SettingURL + " and that heketi runs, then re-run load"
	case uncertain(err):
		return "the connection to heketi broke during the call, so heketi may have done it anyway; re-run load once heketi answers: it finds what was done"
	}
	msg := heketiMessage(err)
	for _, rule := range hintRules {
		if len(rule.ops) > 0 && !opIn(r.Op, rule.ops) {
			continue
		}
		for _, c := range rule.contains {
			if strings.Contains(msg, c) {
				return rule.hint(r)
			}
		}
	}
	if heketi.IsTransient(err) {
		return "heketi was busy or unreachable; re-run load to finish"
	}
	return ""
}

func opIn(op Op, ops []Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// unreachable reports an error that means heketi cannot be reached at all
// (after the client's own retries), so further calls are pointless.
func unreachable(err error) bool {
	if refused(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var he *heketi.Error
	if errors.As(err, &he) && he.Status == 0 && !heketi.IsTimeout(err) {
		// No HTTP answer at all (EOF, broken connection).
		return strings.Contains(he.Message, "EOF") || strings.Contains(he.Message, "connection")
	}
	return false
}
