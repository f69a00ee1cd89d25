// Package store is the HTTP bridge's durable state: users and events in one pebble database,
// the indexes the routes need, and the exactly-once publication pipeline.
//
// # Key layout
//
// Every key starts with one byte naming its keyspace. Strings inside keys (STR) are written
// with every 0x00 byte escaped as 0x00 0xFF and a 0x00 0x01 terminator, so the encoding sorts
// like the strings and no encoded string is a prefix of another: the keys of tenant "a" never
// share a prefix with those of tenant "ab" or "a\x00". TS is a Unix timestamp as 8 bytes big
// endian with the sign bit flipped (negative times sort first); ORDER (server-wide insertion
// counter) and SEQ (per-tenant publication counter) are 8 bytes big endian.
//
//	n STR(username)                        → user record (JSON)
//	u STR(user id)                         → username
//	e STR(tenant) STR(event id)            → event record (binary, see below)
//	c STR(tenant) STR(collection) TS ORDER → event id     (GET /collections/{id})
//	w STR(tenant) STR(user id) TS ORDER    → event id     (GET /user_events)
//	p STR(tenant) SEQ                      → event id     (publications: resume, last Seq)
//	s STR(tenant) STR(name) STR(collection) → TS ORDER event id (latest published: state)
//	d TS ORDER                             → STR(tenant) STR(event id) (unpublished, uncancelled)
//	m "order"                              → last ORDER
//	m "log"                                → index mode's checkpoint: last SEQ applied, first SEQ applied, epoch
//	b STR(session id)                      → TS: a blacklisted session, until it expires
//	t STR(tenant)                          → the tenant's settings (JSON)
//
// An event record is 0x02, ORDER and SEQ as uvarints, a flags byte (1 published,
// 2 cancelled), the timestamp as a varint, the id, name, tenant, collection and user id each
// as a uvarint length and bytes, then the data as compact JSON to the end. It is binary so
// that the state and resume reads that every stream connection makes decode fast.
//
// Every query walks a range under one tenant's prefix, or the due index (the scheduler); none
// scans all events of all tenants. The per-tenant last Seq is the last key of the tenant's
// publication range, read once and then kept in memory; the last ORDER is stored with each
// insert.
//
// # Durability and publication
//
// A write (insert, publication, cancel, user change) takes the write lock, assigns its
// counters, commits its batch without waiting for the WAL sync and queues itself; one
// publisher goroutine syncs the WAL once for everything queued meanwhile (concurrent writers
// share one fsync), calls Options.OnPublish for the publications in commit order, which is
// Seq order, then releases the writers. A publication writes the published flag, the Seq, the
// publication index and the state index in one batch, and removes the due entry: after a
// crash an event is either published (and never published again) or still due (and published
// by the next PublishDue). Reads see only synced data.
//
// # Index mode (cluster)
//
// In a cluster the event log is a replicated stream and this store is one node's index of it:
// Apply writes the stream's records in order, with their stream sequences as ORDER and SEQ and
// the checkpoint in the same batch, without a WAL sync (a crash loses a suffix of batches
// together with their checkpoint, and the stream has them). Insert, PublishDue and Cancel are
// not used then; Reset empties the event keyspaces for a new epoch of the stream.
package store
