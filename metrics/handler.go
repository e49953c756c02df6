package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the handler for GET /metrics: the metrics of src, and the Go runtime's
// (go_*) and the process's (process_*, resident memory and open file descriptors among
// them). They come from a registry of their own, not the package-global default one, so
// nothing else linked into routied adds metrics by registering itself.
func Handler(src Sources, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// A metric that cannot be read is logged, and the others are still served.
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape is a few kilobytes, read over loopback or a private network; gzip would
		// keep a compressor of several hundred kilobytes around for it.
		DisableCompression: true,
		// Scrapes are rare; more at once is a misconfigured scraper, not a need.
		MaxRequestsInFlight: 4,
	})
}
