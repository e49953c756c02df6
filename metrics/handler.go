package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

// maxScrapes is how many scrapes Handler serves at once. Scrapes are rare; more at once is
// a misconfigured scraper, not a need, and each holds its few kilobytes of text.
const maxScrapes = 4

// Handler returns the handler for GET /metrics: the metrics of src, two of the Go runtime's
// (goroutines, heap in use) and four of the process's (CPU time, resident memory, open file
// descriptors, start time). A scrape beyond maxScrapes at once is answered 503. The text is
// never compressed: a scrape is a few kilobytes, read over loopback or a private network,
// and gzip would keep a compressor of several hundred kilobytes around for it.
func Handler(src Sources, log *slog.Logger) http.Handler {
	slots := make(chan struct{}, maxScrapes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			http.Error(w, fmt.Sprintf("503 Service Unavailable: %d scrapes are in progress already; scrape less often", maxScrapes),
				http.StatusServiceUnavailable)
			return
		}
		t := text{b: make([]byte, 0, 8<<10)}
		writeRoutie(&t, src)
		writeRuntime(&t)
		// A series that cannot be read is logged, and the others are still served.
		if err := writeProcess(&t); err != nil {
			log.Warn("process metrics left out of the scrape: cannot read /proc", "err", err)
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Length", strconv.Itoa(len(t.b)))
		w.Write(t.b) // an error is the scraper gone; it will scrape again
	})
}
