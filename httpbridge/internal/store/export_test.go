package store

// SyncStats reports how many WAL syncs the DB made and how many commits they made durable,
// so the benchmark can show how well concurrent writers share fsyncs.
func SyncStats(db *DB) (syncs, commits int64) { return db.syncs.Load(), db.synced.Load() }
