package zones

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		name      string
		labels    map[string]string
		zone, key string
	}{
		{"GA label", map[string]string{LabelZone: "zone-a"}, "zone-a", LabelZone},
		{"beta label only", map[string]string{LabelZoneBeta: "zone-b"}, "zone-b", LabelZoneBeta},
		{"GA wins over beta", map[string]string{LabelZone: "zone-a", LabelZoneBeta: "old"}, "zone-a", LabelZone},
		{"empty GA falls back", map[string]string{LabelZone: "", LabelZoneBeta: "zone-b"}, "zone-b", LabelZoneBeta},
		{"none", map[string]string{"kubernetes.io/hostname": "n1"}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z, k := Of(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels}})
			if z != tt.zone || k != tt.key {
				t.Errorf("Of = %q %q, want %q %q", z, k, tt.zone, tt.key)
			}
		})
	}
	if z, k := Of(nil); z != "" || k != "" {
		t.Errorf("Of(nil) = %q %q", z, k)
	}
}
