package switcher

import (
	"net"
	"strconv"
	"strings"
)

// ParseTarget turns what an operator writes into "host:port": a bare port means host, and
// host:port (or [v6]:port) is taken as is.
func ParseTarget(input, host string) (string, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return "", &TargetError{Input: input, Reason: "empty"}
	}
	if !strings.Contains(s, ":") {
		port, err := parsePort(s)
		if err != nil {
			return "", &TargetError{Input: input, Reason: err.Error()}
		}
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", &TargetError{Input: input, Reason: "not host:port"}
	}
	if h == "" {
		return "", &TargetError{Input: input, Reason: "the host is empty"}
	}
	port, err := parsePort(p)
	if err != nil {
		return "", &TargetError{Input: input, Reason: err.Error()}
	}
	return net.JoinHostPort(h, strconv.Itoa(port)), nil
}

type portError string

func (e portError) Error() string { return string(e) }

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, portError("the port is not a number")
	}
	if n < 1 || n > 65535 {
		return 0, portError("port " + s + " is out of range 1-65535")
	}
	return n, nil
}
