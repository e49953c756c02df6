package switcher

import (
	"time"

	"github.com/routie/routie/proxy"
)

// What a deploy (package deploy) needs beyond switching: the targets' counters, and a record
// that a retired target's app was stopped.

// TargetStats returns the answer counters of the target at addr, if the switcher holds it.
func (s *Switcher) TargetStats(addr string) (proxy.StatsSnapshot, bool) {
	s.mu.Lock()
	e, ok := s.known[addr]
	s.mu.Unlock()
	if !ok {
		return proxy.StatsSnapshot{}, false
	}
	return e.target.Stats(), true
}

// MarkStopped records that the app behind addr was stopped, so a rollback to it says to
// start it first instead of failing its probe.
func (s *Switcher) MarkStopped(addr string) {
	s.mu.Lock()
	e, ok := s.known[addr]
	s.mu.Unlock()
	if ok {
		e.stoppedAt.Store(time.Now().UnixNano())
	}
}
