// Package aaa is the per-client access policy of the bus: where a client may connect from,
// whom it may message, and which topics and masks it may publish, subscribe and broadcast
// to. It knows nothing of the bus; the bus asks it yes-or-no questions.
//
// A [Policy] is written per primary client name; secondary clients ("name%%x") take their
// primary's. [Compile] turns it into [Rules], which answer the questions. The zero Policy
// and the zero [Rule] allow everything, so a policy only names its restrictions, and a nil
// *Rules allows everything, so a bus without access control can hand out nil. A [Map]
// holds the Rules of every client name that may connect; a name missing from a non-nil Map
// may not connect at all.
//
// When Hosts is empty a client may connect from any IPv4 or IPv6 address. BUS/RT's default
// is 0.0.0.0/0, which admits IPv4 only; write "0.0.0.0/0" to get that.
//
// The bus copies a client's Rules when it connects and keeps them for the life of the
// connection, so that a check costs no lock. Changing a Map therefore affects new
// connections only; to apply a change to a connected client at once, disconnect it.
//
// # Policy files
//
// [Load] and [LoadFile] read a JSON object keyed by primary client name:
//
//	{
//	  "test":  { "hosts": ["127.0.0.0/8"] },
//	  "test2": {
//	    "hosts": ["10.0.0.0/8", "::1"],
//	    "p2p": ["test"],
//	    "publish": ["news/#"],
//	    "subscribe": ["news/#", "unit/+/status"],
//	    "broadcast": [],
//	    "deny_p2p": false
//	  }
//	}
//
// Here "test" may connect only from the loopback network and do anything; "test2" may
// connect from 10.0.0.0/8 or ::1, message "test" and its secondaries, publish and
// subscribe under "news/", subscribe to the status of any unit, and not broadcast at all.
//
// Each of "p2p", "publish", "subscribe", "broadcast" and "broker" reads as a [Rule]: an
// absent key allows everything, a non-empty list allows only what it matches, and an empty
// list [] allows nothing. "deny_p2p", "deny_publish", "deny_subscribe", "deny_broadcast"
// and "deny_broker" set the Rule's Deny switch: true with the list absent allows nothing.
// "broker" lists the methods of .broker the client may call, as name masks:
// ["test", "info", "stats", "client.list"] lets a plugin query the bus but not use the
// operator's rtbus.* methods, such as rtbus.client.kill. "hosts" may be absent
// but not empty, since [] there would admit any address while reading as "none". Unknown
// keys, null values, a client listed twice and anything after the object are errors, as a
// typo in an access policy should stop the bus rather than open it.
//
// Patterns follow BUS/RT: topics split on "/", with "+" matching one level and "#" one or
// more, so "news/#" does not match "news" itself; names split on ".", with "?" and "*" in
// the same roles.
package aaa
