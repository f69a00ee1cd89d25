package httpbridge_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rtbus/rtbus/bus"
)

// scrape reads the internal listener's /metrics and returns each series' value by
// "name{label=value,…}" (labels in the order exposed).
func (e *env) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	r := e.expect(e.admin("GET", "/metrics", nil), 200)
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			if len(m.Label) > 0 {
				var ls []string
				for _, l := range m.Label {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	m0 := e.scrape(t)
	// Every name of the contract is there from the start, labelled series included.
	for _, k := range []string{
		"rtbus_streams{transport=sse}", "rtbus_streams{transport=ws}", "rtbus_streams{transport=poll}",
		"rtbus_stream_messages_total{transport=sse}", "rtbus_stream_messages_total{transport=ws}", "rtbus_stream_messages_total{transport=poll}",
		"rtbus_stream_dropped_total{reason=slow}", "rtbus_stream_dropped_total{reason=killed}", "rtbus_stream_dropped_total{reason=closed}",
		"rtbus_inserts_total", "rtbus_insert_seconds_count", "rtbus_publications_total", "rtbus_scheduled_events",
		"rtbus_bus_clients", "rtbus_bus_frames_total{kind=p2p}", "rtbus_bus_frames_total{kind=publish}", "rtbus_bus_frames_total{kind=broadcast}",
		"rtbus_http_requests_total{code=200,route=/healthz}", "go_goroutines", "process_resident_memory_bytes",
	} {
		if _, ok := m0[k]; !ok {
			t.Errorf("metric %s missing", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	ann := e.signup("ann", "acme")
	st := e.openStream("/sse", ann.bearer(), nil)
	e.insert(ann, map[string]any{"event": "a", "data": 1})
	e.insert(ann, map[string]any{"event": "later", "data": 1, "timestamp": e.clock.Now().Unix() + 60})
	st.next(t)
	e.do("GET", "/nowhere", "", nil)
	plugin, _ := e.bus.RegisterClient("plugin")
	defer plugin.Close()
	plugin.Publish(bus.QoSProcessed, "x/y", []byte("1"))
	plugin.Send(bus.QoSProcessed, "nobody", []byte("1"))

	m1 := e.scrape(t)
	for k, want := range map[string]float64{
		"rtbus_streams{transport=sse}":                      1,
		"rtbus_inserts_total":                               2,
		"rtbus_insert_seconds_count":                        2,
		"rtbus_publications_total":                          1,
		"rtbus_scheduled_events":                            1,
		"rtbus_bus_frames_total{kind=publish}":              2, // the plugin's and the bridge's copy of "a"
		"rtbus_bus_frames_total{kind=p2p}":                  1,
		"rtbus_http_requests_total{code=200,route=/insert}": 2,
		"rtbus_http_requests_total{code=201,route=/users}":  1,
		"rtbus_http_requests_total{code=404,route=other}":   1,
		"rtbus_http_requests_total{code=200,route=/sse}":    1,
	} {
		if got := m1[k] - m0[k]; got != want {
			t.Errorf("%s grew by %v, want %v", k, got, want)
		}
	}
	waitFor(t, "the stream's message to be counted", func() bool { // counted once written
		return e.scrape(t)["rtbus_stream_messages_total{transport=sse}"]-m0["rtbus_stream_messages_total{transport=sse}"] == 1
	})
	if m1["rtbus_bus_clients"] != m0["rtbus_bus_clients"]+1 {
		t.Errorf("bus clients %v -> %v", m0["rtbus_bus_clients"], m1["rtbus_bus_clients"])
	}

	// A kill and a scheduled publication move their series.
	e.expect(e.do("POST", "/logout", ann.bearer(), nil), 200)
	st.killed(t, time.Now())
	e.clock.Advance(61 * time.Second)
	waitFor(t, "the scheduled event to be published", func() bool {
		m2 := e.scrape(t)
		return m2["rtbus_scheduled_events"] == 0 && m2["rtbus_publications_total"]-m0["rtbus_publications_total"] == 2
	})
	waitFor(t, "the killed stream to be counted", func() bool {
		m2 := e.scrape(t)
		return m2["rtbus_streams{transport=sse}"] == 0 && m2["rtbus_stream_dropped_total{reason=killed}"] == 1
	})
	// The scheduled count survives a restart.
	e.insert(e.login("ann"), map[string]any{"event": "later", "data": 1, "timestamp": e.clock.Now().Unix() + 60})
	e.restart()
	if n := e.scrape(t)["rtbus_scheduled_events"]; n != 1 {
		t.Fatalf("scheduled events after a restart: %v", n)
	}
}
