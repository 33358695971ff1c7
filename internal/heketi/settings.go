package heketi

// The heketi settings as messages name them. Packages say which setting to
// fix, never a command-line flag: the same messages reach Events and CSI
// callers, where a flag means nothing. The command line maps each phrase
// to its flags (cmd/glusterkube/app).
const (
	// SettingURL is the heketi server's address.
	SettingURL = "the heketi URL"
	// SettingCredentials are the heketi user and its JWT key.
	SettingCredentials = "the heketi user and key"
	// SettingTimeout is the per-call deadline.
	SettingTimeout = "the heketi call timeout"
)
