package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/routie/routie/conf"
)

// logOutput builds routied's log handler from [log] and can rebuild it when the file changes,
// so level and format apply live. Loggers made with With keep working across a rebuild.
type logOutput struct {
	w     io.Writer
	tty   bool
	level slog.LevelVar
	base  atomic.Pointer[slog.Handler]
}

func newLogOutput(w *os.File) *logOutput {
	o := &logOutput{w: w, tty: term.IsTerminal(int(w.Fd()))}
	o.apply(conf.Default().Log)
	return o
}

// apply switches to the level and format in c.
func (o *logOutput) apply(c conf.Log) {
	o.level.Set(parseLevel(c.Level))
	var h slog.Handler
	switch {
	case c.Format == "json" || (c.Format == "auto" && !o.tty):
		// journald and log shippers read JSON.
		h = slog.NewJSONHandler(o.w, &slog.HandlerOptions{Level: &o.level, ReplaceAttr: readableDurations})
	default:
		h = tint.NewHandler(o.w, &tint.Options{
			Level:      &o.level,
			TimeFormat: time.TimeOnly,
			NoColor:    !o.tty, // colours only where a person reads them
		})
	}
	o.base.Store(&h)
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// logger returns a logger that always writes through the current handler.
func (o *logOutput) logger() *slog.Logger { return slog.New(&liveHandler{out: o}) }

// liveHandler forwards to the current base handler, replaying its With calls on it.
type liveHandler struct {
	out *logOutput
	ops []func(slog.Handler) slog.Handler
}

func (h *liveHandler) current() slog.Handler {
	base := *h.out.base.Load()
	for _, op := range h.ops {
		base = op(base)
	}
	return base
}

func (h *liveHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.out.level.Level()
}

func (h *liveHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *liveHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(attrs) })
}

func (h *liveHandler) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}

func (h *liveHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	ops := append(append([]func(slog.Handler) slog.Handler{}, h.ops...), op)
	return &liveHandler{out: h.out, ops: ops}
}

// readableDurations writes durations as "1.5s" rather than a count of nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
