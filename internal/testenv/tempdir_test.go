package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// A dir whose owner died is swept by the next start; a dir whose owner
// lives is not.
func TestStaleDirsSwept(t *testing.T) {
	const prefix = "glusterkube-sweeptest-"
	live, err := ownedTempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer removeOwnedDir(live)
	// A dead owner's dir: the owner file exists, nobody holds its lock.
	dead, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, ownerFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Not ours (no owner file): left alone.
	foreign, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(foreign)

	sweepStaleDirs(prefix)
	for dir, want := range map[string]bool{live: true, dead: false, foreign: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", dir, err == nil, want)
		}
	}
	if err := removeOwnedDir(live); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("owned dir not removed: %v", err)
	}
}
