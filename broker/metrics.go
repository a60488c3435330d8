package broker

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the broker's Prometheus metrics. Register them with
// NewMetrics on the registry /metrics serves, and pass them to New in
// Config.Metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	records  prometheus.Counter
	errors   *prometheus.CounterVec

	// groups is the broker whose groups the group-state gauge counts; set
	// by New, read at scrape time.
	groups atomic.Pointer[groups]
	states *prometheus.Desc
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
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kbox_broker_response_bytes_total", Help: "Bytes of Kafka responses sent.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kbox_broker_records_appended_total", Help: "Records appended by produce requests (duplicates of idempotent retries excluded).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kbox_broker_request_failures_total", Help: "Requests that closed their connection, by API.",
		}, []string{"api"}),
		states: prometheus.NewDesc("kbox_broker_groups", "Consumer groups this node coordinates, by state.", []string{"state"}, nil),
	}
	reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.records, m.errors, groupCollector{m})
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

// groupCollector reports group states at scrape time.
type groupCollector struct{ m *Metrics }

func (c groupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.states }

func (c groupCollector) Collect(ch chan<- prometheus.Metric) {
	gs := c.m.groups.Load()
	if gs == nil {
		return
	}
	counts := map[groupState]int{groupEmpty: 0, groupPreparingRebalance: 0, groupCompletingRebalance: 0, groupStable: 0}
	listing, code := gs.list()
	if code != 0 {
		return // not the coordinator: no groups here
	}
	for _, l := range listing {
		counts[l.state]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.m.states, prometheus.GaugeValue, float64(n), state.String())
	}
}
