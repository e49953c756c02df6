package main

import (
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

func TestDeployLimitsComeFromTheConfig(t *testing.T) {
	c, err := conf.Parse("routie.toml", []byte("[deploy]\nmax_error_rate = 0.05\nmax_latency_ratio = 3.0\nmin_requests = 7\nlatency_floor = \"75ms\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := deploySettingsFrom(c).Limits
	if l.MaxErrorRate != 0.05 || l.MaxLatencyRatio != 3 || l.MinRequests != 7 || l.LatencyFloor != 75*time.Millisecond {
		t.Errorf("the deployer's limits %+v do not follow [deploy]", l)
	}
}
