// Package ntpclock is a wall clock disciplined by NTP: it measures the offset of the local
// clock against the configured servers in the background and applies it to Now.
package ntpclock
