// Package rpc is the BUS/RT RPC layer on any bus connection, in-process (*bus.Client) or
// remote (transport.Dial), and the core methods of .broker (docs/wire.md in the repository
// describes both).
//
// A Client owns the one-to-one messages of its connection: Call sends a request and waits
// for the reply matched by call id, Call0 and Notify send without waiting, and handlers
// registered with Handle answer incoming requests concurrently. Params and results are raw
// bytes, MessagePack by convention (Marshal, Unmarshal, CallValue). Errors carry an RPC code
// (*Error); bus refusals travel as -32000 - code, so a call to a client that does not exist
// fails at once with CodeNotRegistered, which matches bus.ErrNotRegistered under errors.Is.
//
// ServeBroker makes a broker's own client .broker answer test, info, stats, client.list and
// benchmark.test.
package rpc
