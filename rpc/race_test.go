//go:build race

package rpc_test

// The race detector makes sync.Pool drop what is put in it at random, so pooled buffers are
// allocated anew now and then: allocation counts mean nothing under it.
const raceEnabled = true
