// Package e2e tests rtbusd as its users run it: real rtbusd processes on loopback, a single
// node or a cluster of three, reached over HTTP only. The package has no code of its own;
// its tests build rtbusd once, start and kill nodes, and check what clients see: one table of
// route scenarios run in both modes, and the faults a cluster must survive.
package e2e
