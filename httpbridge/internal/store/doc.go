// Package store is the HTTP bridge's durable state: users and events in a pebble database,
// with the indexes the routes need and the exactly-once publication pipeline.
//
// Key layout is documented in keys.go and in the README.
package store
