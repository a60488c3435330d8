package broker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the broker's Prometheus metrics. Register them with
// NewMetrics on the registry /metrics serves.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	errors   *prometheus.CounterVec
}

// NewMetrics creates the broker metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kbox_broker_requests_total", Help: "Kafka requests handled, by API and version.",
		}, []string{"api", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kbox_broker_request_seconds", Help: "Time to handle a Kafka request, by API.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"api"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kbox_broker_request_bytes_total", Help: "Bytes of Kafka requests received.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kbox_broker_request_failures_total", Help: "Requests that closed their connection, by API.",
		}, []string{"api"}),
	}
	reg.MustRegister(m.requests, m.latency, m.bytesIn, m.errors)
	return m
}

func (m *Metrics) observe(key, version int16, d time.Duration, size int, err error) {
	name := kmsg.NameForKey(key)
	m.requests.WithLabelValues(name, strconv.Itoa(int(version))).Inc()
	m.latency.WithLabelValues(name).Observe(d.Seconds())
	m.bytesIn.Add(float64(size))
	if err != nil {
		m.errors.WithLabelValues(name).Inc()
	}
}
