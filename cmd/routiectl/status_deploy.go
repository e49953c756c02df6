package main

import (
	"fmt"
	"time"

	"github.com/routie/routie/deploy"
)

// deploy prints the deploy in progress: its phase, the time left in the monitor window, and
// the two targets side by side.
//
//	deploy    #4 127.0.0.1:8080 → 127.0.0.1:8081: monitor, 3m12s left
//	          new 127.0.0.1:8081   41.2 req/s   0.0% errors   p95 12ms
//	          old 127.0.0.1:8080   39.8 req/s   0.1% errors   p95 11ms
//
// A canary deploy's walk says its share and step instead of the monitor's time:
//
//	deploy    #5 127.0.0.1:8080 → 127.0.0.1:8081: canary 25% (step 2 of 3), 1m12s left
func (c *cli) deploy(s *deploy.Status) {
	left := ""
	switch {
	case s.Canary != nil && s.Phase == deploy.PhaseCanary:
		left = fmt.Sprintf(" %d%% (step %d of %d), %s left", s.Canary.Weight, s.Canary.Step, len(s.Canary.Steps), s.Canary.StepLeft.Round(time.Second))
	case s.Phase == deploy.PhaseMonitor:
		left = fmt.Sprintf(", %s left", s.MonitorLeft.Round(time.Second))
	}
	fmt.Fprintf(c.stdout, "%-9s #%d %s → %s: %s%s\n", "deploy", s.ID, s.From, s.To, c.paint(yellow, s.Phase), left)
	for _, f := range []struct {
		label string
		fig   *deploy.Figures
	}{{"new", s.New}, {"old", s.Old}} {
		if f.fig == nil {
			continue
		}
		fmt.Fprintf(c.stdout, "%-9s %s %-21s %7.1f req/s  %5.1f%% errors  p95 %s\n", "", f.label, f.fig.Addr, f.fig.Rate, 100*f.fig.ErrorRate, f.fig.P95)
	}
}
