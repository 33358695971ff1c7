package volume

import "fmt"

// GiB is heketi's unit of volume size, in bytes.
const GiB = int64(1) << 30

// maxGiB is the largest size heketi's API takes (an int32 of GiB).
const maxGiB = int64(^uint32(0) >> 1)

// SizeGiB rounds a size in bytes up to whole GiB, at least 1. Its error
// (IsInvalid) says the size is too large.
func SizeGiB(bytes int64) (int, error) {
	if bytes <= 0 {
		return 1, nil
	}
	g := bytes / GiB
	if bytes%GiB != 0 {
		g++
	}
	if g > maxGiB {
		return 0, classify(kindInvalid, false, fmt.Errorf("requested size of %d bytes is larger than heketi's limit of %d GiB", bytes, maxGiB))
	}
	return int(g), nil
}
