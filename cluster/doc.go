// Package cluster runs an rtbusd node's NATS side in cluster mode: an embedded nats-server
// with JetStream and routes to its peers, or a connection to a NATS cluster an operator runs,
// and the in-process client (nats.go and its jetstream package) the rest of rtbusd uses.
//
// The package knows nothing of the bus or of HTTP: the HTTP bridge builds its event log,
// key-value buckets and cross-node subjects on the Node it is given. Single-node rtbusd
// never imports NATS at run time: no Node, no NATS.
package cluster
