package main

import (
	"github.com/routie/routie/conf"
	"github.com/routie/routie/deploy"
)

// deploySettingsFrom picks the deployer's settings out of the config.
func deploySettingsFrom(c conf.Config) deploy.Settings {
	return deploy.Settings{
		Host:         c.Upstream.Host,
		Ports:        c.Upstream.Ports,
		Start:        c.Deploy.Start,
		Stop:         c.Deploy.Stop,
		StartTimeout: c.Deploy.StartTimeout,
		Monitor:      c.Deploy.Monitor,
		Sustain:      c.Deploy.Sustain,
		Limits: deploy.Limits{
			MaxErrorRate:    c.Deploy.MaxErrorRate,
			MaxLatencyRatio: c.Deploy.MaxLatencyRatio,
			LatencyFloor:    c.Deploy.LatencyFloor,
			MinRequests:     uint64(c.Deploy.MinRequests),
		},
	}
}
