package heketi

import "strings"

// IsNameInUse reports whether heketi refused a volume create because the
// name is already used in every eligible cluster ("Volume name '...'
// already in use"). The volume with that name may be one an earlier,
// interrupted attempt created.
func IsNameInUse(err error) bool {
	he := asError(err)
	return he != nil && strings.Contains(he.Message, "already in use")
}
