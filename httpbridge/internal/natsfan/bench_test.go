package natsfan_test

import "testing"

// BenchmarkPush: one ephemeral message to a tenant with no streams, on the local hub alone
// (single-node mode), and through the fan-out of a three-node cluster, counted (the sender
// waits for both other nodes' counts, as POST /v1/messages does) and not (a bus push). The
// ratios to local are what to read; the cluster runs on this one machine.
func BenchmarkPush(b *testing.B) {
	ns := startNodes(b, 3)
	m := push("acme", "", "e", `{"x":1}`)
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			ns[0].hub.Publish(m)
		}
	})
	b.Run("cluster-counted", func(b *testing.B) {
		for b.Loop() {
			ns[0].fan.Push(m, true)
		}
	})
	b.Run("cluster-uncounted", func(b *testing.B) {
		for b.Loop() {
			ns[0].fan.Push(m, false)
		}
	})
	b.Run("cluster-presence", func(b *testing.B) {
		for b.Loop() {
			ns[0].fan.Conns("acme", "")
		}
	})
}
