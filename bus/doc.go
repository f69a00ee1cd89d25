// Package bus is rtbus's routing core: an in-process message broker with the routing
// semantics of the BUS/RT wire protocol (docs/wire.md in the repository), so that an
// in-process client and a socket client are indistinguishable to their peers.
//
// A host program creates a Broker with New and registers named clients with
// Broker.RegisterClient. Clients exchange frames one-to-one (Send), by broadcast to a name mask
// such as "worker.*" (Broadcast), and by topic publish/subscribe with "+" and "#" wildcards
// (Publish, PublishFor, Subscribe, Exclude). Each operation takes a QoS: with QoSProcessed or
// QoSRealtimeProcessed the call returns the routing result as an error value (ErrNotRegistered,
// ErrNotDelivered, ErrAccessDenied), with QoSNo or QoSRealtime it returns at once.
//
// Delivered frames wait in the receiver's bounded queue (DefaultQueueSize frames) until it
// reads them with Recv or Frames. A receiver whose queue is full when a frame is routed to it
// is disconnected as a slow receiver, never the sender; an in-process client may instead make
// its senders wait (WithBlockingSenders).
//
// Routing allocates nothing: frames are values, and a payload is shared, not copied, between
// the sender and every receiver, so neither may modify it once sent.
//
// Access control is per primary client name (package aaa), checked at registration and on
// every operation.
package bus
