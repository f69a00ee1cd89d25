package bus

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// announcement is the MessagePack map .broker publishes on .broker/info and .broker/warn
// (WIRE.md §6). Field order is the encoding order: s, d, t.
type announcement struct {
	S string `msgpack:"s"`
	D string `msgpack:"d,omitempty"`
	T uint64 `msgpack:"t"`
}

func encodeAnnouncement(a announcement) []byte {
	p, err := msgpack.Marshal(&a)
	if err != nil {
		panic("bus: encoding an announcement: " + err.Error()) // strings and a uint64 always encode
	}
	return p
}

// announce publishes a primary's registration ("reg") or unregistration ("unreg").
func (b *Broker) announce(event, name string) {
	p := encodeAnnouncement(announcement{S: event, D: name, T: uint64(time.Now().UnixNano())})
	b.publish(BrokerName, TopicInfo, "", p, false, false, nil)
}

func shutdownPayload() []byte {
	return encodeAnnouncement(announcement{S: "shutdown", T: uint64(time.Now().UnixNano())})
}
