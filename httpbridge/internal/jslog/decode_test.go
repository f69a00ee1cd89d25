package jslog

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

func TestDecode(t *testing.T) {
	e := store.Event{ID: "i1", Event: "n", TenantID: "t", CollectionID: "c", UserID: "u", Timestamp: 5, Data: []byte(`{"a":1}`)}
	b, err := encodeBody(&e)
	if err != nil {
		t.Fatal(err)
	}
	cancel := nats.Header{kindHeader: []string{kindCancel}}
	for _, c := range []struct {
		subj string
		h    nats.Header
		kind store.Kind
	}{
		{"rtbus.ev.ins.i1", nil, store.KindInsert},
		{"rtbus.ev.sched.i1", nil, store.KindSchedule},
		{"rtbus.ev.pub.i1", nats.Header{"Nats-Scheduler": []string{"rtbus.ev.sched.i1"}}, store.KindPublish},
		{"rtbus.ev.pub.i1", cancel, store.KindCancel},
	} {
		r, ok := decode(c.subj, 7, c.h, b)
		if !ok || r.Kind != c.kind || r.Seq != 7 || r.Event.ID != "i1" || r.Event.Timestamp != 5 || string(r.Event.Data) != `{"a":1}` {
			t.Errorf("%s: %+v, %v", c.subj, r, ok)
		}
	}
	for _, subj := range []string{"rtbus.ev.ins.other", "rtbus.ev.x.i1", "other"} {
		if _, ok := decode(subj, 1, nil, b); ok {
			t.Errorf("%s decoded", subj)
		}
	}
	if _, ok := decode("rtbus.ev.ins.i1", 1, nil, []byte("{")); ok {
		t.Error("a bad body decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("rtbus.ev.ins.a", []byte(`{"id":"a","event":"e","tenant_id":"t","data":1}`), false)
	f.Add("rtbus.ev.pub.a", []byte(`{"id":"a"}`), true)
	f.Fuzz(func(t *testing.T, subj string, body []byte, cancelled bool) {
		h := nats.Header{}
		if cancelled {
			h.Set(kindHeader, kindCancel)
		}
		r, ok := decode(subj, 1, h, body)
		if ok && (r.Kind == 0 || r.Seq != 1) {
			t.Fatalf("decoded %+v", r)
		}
	})
}
