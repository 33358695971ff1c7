package heketi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsObserve(t *testing.T) {
	m := NewMetrics("glusterkube")
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	m.Observe("volume_create", 120*time.Millisecond, nil)
	m.Observe("volume_info", time.Millisecond, &Error{Op: "volume_info", Status: http.StatusNotFound, Message: "Id not found"})
	m.Observe("volume_create", time.Second, &Error{Op: "volume_create", Err: context.DeadlineExceeded})
	m.Observe("cluster_list", time.Millisecond, &Error{Op: "cluster_list", Status: http.StatusUnauthorized, Message: "Administrator access required"})
	m.Observe("volume_delete", time.Millisecond, errors.New("boom"))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]float64{}
	durations := 0
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "glusterkube_heketi_request_errors_total":
				errs[labels["operation"]+"/"+labels["reason"]] = mt.GetCounter().GetValue()
			case "glusterkube_heketi_request_duration_seconds":
				durations++
			}
		}
	}
	want := map[string]float64{
		"cluster_list/admin_required": 1,
		"volume_create/timeout":       1,
		"volume_delete/other":         1,
		"volume_info/not_found":       1,
	}
	if len(errs) != len(want) {
		t.Errorf("errors %v, want %v", errs, want)
	}
	for k, v := range want {
		if errs[k] != v {
			t.Errorf("errors[%s] = %v, want %v", k, errs[k], v)
		}
	}
	if durations != 5 {
		t.Errorf("%d duration series, want 5 (operation x outcome)", durations)
	}
}
