package app

import (
	"strings"
	"testing"

	"github.com/glusterkube/glusterkube/daemonset"
	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Package messages name settings; the command line adds the flags.
func TestWithFlags(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"heketi is unreachable: check " + heketi.SettingURL + " and that heketi runs", "--heketi-url or $HEKETI_CLI_SERVER"},
		{"heketi rejected the credentials: check " + heketi.SettingCredentials, "--heketi-key-file"},
		{"raise " + heketi.SettingTimeout + " if heketi is slow", "(--heketi-timeout)"},
		{"add x=y:NoSchedule to " + daemonset.SettingTolerations, "(--toleration, or tolerations: in --values)"},
		{"nothing to map here", "nothing to map here"},
	}
	for _, tt := range tests {
		if got := withFlags(tt.msg); !strings.Contains(got, tt.want) {
			t.Errorf("withFlags(%q) = %q, want it to contain %q", tt.msg, got, tt.want)
		}
	}
}
