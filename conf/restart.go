package conf

// RestartNeeded returns the dotted keys that differ between old and new but that a running
// routied cannot apply: they are bound at startup (listeners, the control socket, the
// metrics address), locate state it has already loaded, or are read by net/http's server
// without a lock (limits.header_timeout, limits.idle_timeout). Every other key applies live
// on reload. The keys are in file order; nil means the whole change applies live.
func RestartNeeded(old, new Config) []string {
	var keys []string
	for _, k := range []struct {
		key     string
		changed bool
	}{
		{"listen.http", old.Listen.HTTP != new.Listen.HTTP},
		{"listen.https", old.Listen.HTTPS != new.Listen.HTTPS},
		{"limits.header_timeout", old.Limits.HeaderTimeout != new.Limits.HeaderTimeout},
		{"limits.idle_timeout", old.Limits.IdleTimeout != new.Limits.IdleTimeout},
		{"control.socket", old.Control.Socket != new.Control.Socket},
		{"control.mode", old.Control.Mode != new.Control.Mode},
		{"state.dir", old.State.Dir != new.State.Dir},
		{"metrics.listen", old.Metrics.Listen != new.Metrics.Listen},
	} {
		if k.changed {
			keys = append(keys, k.key)
		}
	}
	return keys
}
