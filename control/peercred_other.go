//go:build !linux

package control

import (
	"errors"
	"net"
)

// peerCred is not implemented off Linux (routied runs under systemd); changes are logged
// with peer=unknown.
func peerCred(*net.UnixConn) (peer, error) {
	return peer{}, errors.New("peer credentials are only read on Linux")
}

func commandName(int) string { return "" }
