package health

import (
	"sync/atomic"
)

// Health is what the probes say of a target so far.
type Health int32

const (
	// Unknown means no probe has finished yet.
	Unknown Health = iota
	// Up means the last probe passed.
	Up
	// Down means the last probe failed.
	Down
)

func (h Health) String() string {
	switch h {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// MarshalText makes Health read as a word in JSON.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// State tracks one target's health across probes. It is safe for concurrent use; its zero
// value is Unknown.
type State struct {
	health atomic.Int32
	last   atomic.Pointer[Result]
}

// Record stores r and reports whether it changed the target's health, so the caller logs a
// transition exactly once even when probes of the same target race (a periodic probe and a
// switch's gate).
func (s *State) Record(r Result) (changed bool) {
	s.last.Store(&r)
	next := Down
	if r.Passed {
		next = Up
	}
	old := Health(s.health.Swap(int32(next)))
	return old != next
}

// Health returns the health after the last recorded probe.
func (s *State) Health() Health { return Health(s.health.Load()) }

// Last returns the last recorded probe, or false if there was none.
func (s *State) Last() (Result, bool) {
	r := s.last.Load()
	if r == nil {
		return Result{}, false
	}
	return *r, true
}

// UnmarshalText reads the word MarshalText writes, so a status read back from JSON keeps it.
func (h *Health) UnmarshalText(b []byte) error {
	switch string(b) {
	case "up":
		*h = Up
	case "down":
		*h = Down
	default:
		*h = Unknown
	}
	return nil
}
