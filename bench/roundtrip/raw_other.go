//go:build !linux

package main

import (
	"errors"
	"net"
)

var errRaw = errors.New("roundtrip: -raw needs linux")

func rawAck(net.Conn) error { return errRaw }

func rawClient(net.Conn, int, []byte) error { return errRaw }
