package httpbridge

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// metrics are the server's Prometheus metrics (GATEWAY.md "Metrics": the names are a
// contract), in a registry of its own. The hub's, the bus's and the store's counters are
// read at scrape time, so the paths that move them pay an atomic add at most.
type metrics struct {
	reg           *prometheus.Registry
	inserts       prometheus.Counter
	insertSeconds prometheus.Histogram
	publications  prometheus.Counter
	requests      *prometheus.CounterVec
	byRoute       sync.Map // routeCode → prometheus.Counter, resolved once
}

type routeCode struct {
	route string
	code  int
}

func newMetrics(s *Server, b *bus.Broker) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		inserts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtbus_inserts_total", Help: "Events inserted (acknowledged durable)."}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rtbus_insert_seconds", Help: "Time from an insert request to its event being durable.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}),
		publications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtbus_publications_total", Help: "Events published (handed to the streams and the bus)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtbus_http_requests_total", Help: "HTTP requests answered, by route pattern and status code."},
			[]string{"route", "code"}),
	}
	m.reg.MustRegister(m.inserts, m.insertSeconds, m.publications, m.requests,
		&scrapeCollector{s: s, b: b},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.cfg.Cluster != nil {
		s.cfg.Cluster.SetIndexLag(s.indexLag)
		m.reg.MustRegister(s.cfg.Cluster.Collector()) // readiness, routes, leaders, index lag
	}
	for _, r := range []string{"/healthz", "/readyz"} {
		m.requests.WithLabelValues(r, "200") // every name exposed from start
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// request counts one answered request.
func (m *metrics) request(route string, code int) {
	k := routeCode{route, code}
	c, ok := m.byRoute.Load(k)
	if !ok {
		c, _ = m.byRoute.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

func (m *metrics) insert(start time.Time) {
	m.inserts.Inc()
	m.insertSeconds.Observe(time.Since(start).Seconds())
}

// count wraps a mux: each request is counted under the pattern that served it.
func (m *metrics) count(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK // a stream that took its connection over answered 200 itself
		}
		m.request(route, code)
	})
}

// statusWriter records the status code; Unwrap keeps Flush and Hijack reachable through
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// scrapeCollector reads the hub's, the bus's and the store's counters at scrape time.
type scrapeCollector struct {
	s *Server
	b *bus.Broker
}

var (
	descStreams   = prometheus.NewDesc("rtbus_streams", "Open streams, by transport.", []string{"transport"}, nil)
	descMessages  = prometheus.NewDesc("rtbus_stream_messages_total", "Messages written to streams, by transport.", []string{"transport"}, nil)
	descDropped   = prometheus.NewDesc("rtbus_stream_dropped_total", "Streams ended by the server or their client: slow, killed (session or user), closed.", []string{"reason"}, nil)
	descScheduled = prometheus.NewDesc("rtbus_scheduled_events", "Events inserted for a later time, not yet published or cancelled.", nil, nil)
	descClients   = prometheus.NewDesc("rtbus_bus_clients", "Clients registered on the bus (secondaries and .broker included).", nil, nil)
	descFrames    = prometheus.NewDesc("rtbus_bus_frames_total", "Frames bus clients sent, by kind.", []string{"kind"}, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descMessages, descDropped, descScheduled, descClients, descFrames} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.hub.Stats()
	for _, t := range []string{sse.TransportSSE, sse.TransportWS, sse.TransportPoll} {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(st.Streams[t]), t)
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(st.Messages[t]), t)
	}
	for _, r := range []string{sse.DropSlow, sse.DropKilled, sse.DropClosed} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descScheduled, prometheus.GaugeValue, float64(c.s.db.Scheduled()))
	var bs bus.Stats
	if c.b != nil {
		bs = c.b.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(bs.Clients))
	for kind, n := range map[string]uint64{"p2p": bs.P2P, "publish": bs.Publish, "broadcast": bs.Broadcast} {
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(n), kind)
	}
}
