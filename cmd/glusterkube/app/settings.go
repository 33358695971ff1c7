package app

import (
	"strings"

	"github.com/glusterkube/glusterkube/daemonset"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
)

// settingFlags maps the settings that packages name in their messages to
// the flags (and environment variables) that set them on this command
// line. Packages never name flags: their messages also reach Events and
// CSI callers.
var settingFlags = strings.NewReplacer(
	heketi.SettingURL, heketi.SettingURL+" (--heketi-url or $HEKETI_CLI_SERVER)",
	heketi.SettingCredentials, heketi.SettingCredentials+" (--heketi-user and --heketi-key-file, or $HEKETI_CLI_USER and $HEKETI_CLI_KEY)",
	heketi.SettingTimeout, heketi.SettingTimeout+" (--heketi-timeout)",
	daemonset.SettingTolerations, daemonset.SettingTolerations+" (--toleration, or tolerations: in --values)",
	volume.SettingZonesFromNodes, volume.SettingZonesFromNodes+" (glusterkube topology load --zones-from-nodes, or glusterkube run --zones-from-nodes)",
)

// withFlags is msg with each setting it names followed by its flags.
func withFlags(msg string) string { return settingFlags.Replace(msg) }
