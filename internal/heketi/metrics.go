package heketi

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are Prometheus collectors for heketi calls, fed through
// Config.Observe:
//
//	m := heketi.NewMetrics("glusterkube")
//	cfg.Observe = m.Observe
//	registry.MustRegister(m.Collectors()...)
type Metrics struct {
	// Duration is the latency of each call by operation and outcome.
	Duration *prometheus.HistogramVec
	// Errors counts failed calls by operation and reason.
	Errors *prometheus.CounterVec
}

// Error reasons used as the "reason" label.
const (
	ReasonNotFound      = "not_found"
	ReasonAdminRequired = "admin_required"
	ReasonUnauthorized  = "unauthorized"
	ReasonTimeout       = "timeout"
	ReasonCanceled      = "canceled"
	ReasonTransient     = "transient"
	ReasonOther         = "other"
)

// NewMetrics returns unregistered collectors in namespace (e.g. "glusterkube").
func NewMetrics(namespace string) *Metrics {
	return &Metrics{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "heketi",
			Name:      "request_duration_seconds",
			Help:      "Latency of heketi calls, including waiting for asynchronous operations, by operation and outcome (ok or error).",
			Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"operation", "outcome"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "heketi",
			Name:      "request_errors_total",
			Help:      "Failed heketi calls by operation and reason (not_found, admin_required, unauthorized, timeout, canceled, transient, other).",
		}, []string{"operation", "reason"}),
	}
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Duration, m.Errors}
}

// Observe records one call; it is a Config.Observe.
func (m *Metrics) Observe(op string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.Errors.WithLabelValues(op, ErrorReason(err)).Inc()
	}
	m.Duration.WithLabelValues(op, outcome).Observe(d.Seconds())
}

// ErrorReason classifies err into one of the Reason* values.
func ErrorReason(err error) string {
	switch {
	case IsNotFound(err):
		return ReasonNotFound
	case IsAdminRequired(err):
		return ReasonAdminRequired
	case IsUnauthorized(err):
		return ReasonUnauthorized
	case IsTimeout(err):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case IsTransient(err):
		return ReasonTransient
	}
	return ReasonOther
}
