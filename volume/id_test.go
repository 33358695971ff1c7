package volume

import (
	"strings"
	"testing"
)

const hid = "0b2e5c4e1b9d4b7f8a6c3d2e1f0a9b8c"

func TestParseID(t *testing.T) {
	long := "http://" + strings.Repeat("h", MaxIDLen-len(hid)-len("@http://")) // exactly 128 bytes in all
	tests := []struct {
		name, in string
		want     ID
		wantErr  string
	}{
		{"default server", hid, ID{Heketi: hid}, ""},
		{"other server", hid + "@http://heketi.other:8080", ID{Heketi: hid, URL: "http://heketi.other:8080"}, ""},
		{"https with path", hid + "@https://h.example/heketi", ID{Heketi: hid, URL: "https://h.example/heketi"}, ""},
		{"at the limit", hid + "@" + long, ID{Heketi: hid, URL: long}, ""},
		{"over the limit", hid + "@" + long + "x", ID{}, "at most 128"},
		{"empty", "", ID{}, "32 hex digits"},
		{"short id", "abc", ID{}, "32 hex digits"},
		{"uppercase id", strings.ToUpper(hid), ID{}, "32 hex digits"},
		{"a PV name", "pvc-0b2e5c4e-1b9d-4b7f-8a6c-3d2e1f0a9b8c", ID{}, "32 hex digits"},
		{"empty URL", hid + "@", ID{}, "not an http(s) URL"},
		{"not http", hid + "@ftp://h", ID{}, "not an http(s) URL"},
		{"trailing slash", hid + "@http://h:1/", ID{}, "trailing slash"},
		{"user in URL", hid + "@http://admin@h:1", ID{}, "without user"},
		{"query", hid + "@http://h:1?x=1", ID{}, "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseID(%q) = %+v, %v; want error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseID(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q (round trip)", got.String(), tt.in)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	tests := []struct {
		name, url, def, want, wantErr string
	}{
		{"default server carries no URL", "http://heketi:8080", "http://heketi:8080", hid, ""},
		{"trailing slashes do not matter", "http://heketi:8080/", "http://heketi:8080", hid, ""},
		{"other server", "http://other:8080", "http://heketi:8080", hid + "@http://other:8080", ""},
		{"no default server", "http://other:8080", "", hid + "@http://other:8080", ""},
		{"URL too long", "http://" + strings.Repeat("h", 100), "", "", "at most 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := NewID(hid, tt.url, tt.def)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewID = %v, %v; want error with %q", id, err, tt.wantErr)
				}
				return
			}
			if err != nil || id.String() != tt.want {
				t.Fatalf("NewID = %q, %v; want %q", id.String(), err, tt.want)
			}
		})
	}
}

// Every resturl ParseClass accepts fits in a volume id.
func TestClassURLFitsInID(t *testing.T) {
	ok := "http://" + strings.Repeat("h", maxURLLen-len("http://"))
	if _, err := ParseClass("c", map[string]string{ParamRESTURL: ok}); err != nil {
		t.Fatalf("URL of %d bytes refused: %v", len(ok), err)
	}
	if _, err := NewID(hid, ok, ""); err != nil {
		t.Fatalf("a URL ParseClass accepts does not fit: %v", err)
	}
	_, err := ParseClass("c", map[string]string{ParamRESTURL: ok + "h"})
	if err == nil || !strings.Contains(err.Error(), "CSI volume id") {
		t.Fatalf("URL of %d bytes: %v", len(ok)+1, err)
	}
}
