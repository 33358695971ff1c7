package didyoumean

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"hostnames", "zone", "tags", "nodeSelector", "manage", "storage"}
	tests := []struct{ name, want string }{
		{"hostname", "hostnames"},
		{"zon", "zone"},
		{"nodeSelectr", "nodeSelector"},
		{"NodeSelector", "nodeSelector"},
		{"stor", "storage"},
		{"banana", ""},
		{"x", ""},
	}
	for _, tc := range tests {
		if got := Closest(tc.name, known); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
