// Package didyoumean finds the known name a mistyped one was meant to be,
// for "unknown field" messages.
package didyoumean

import "strings"

// Closest returns the name in known closest to name, if it is close enough
// to be a typo (edit distance under 3, ignoring case, or name a prefix of
// at least 3 characters); "" otherwise.
func Closest(name string, known []string) string {
	best, bestD := "", 3
	lower := strings.ToLower(name)
	for _, k := range known {
		dist := editDistance(lower, strings.ToLower(k))
		if dist < bestD || (strings.HasPrefix(strings.ToLower(k), lower) && len(name) >= 3) {
			if dist < bestD {
				bestD = dist
			}
			best = k
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
