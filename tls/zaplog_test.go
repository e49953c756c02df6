package tls

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestCertmagicLogsJoinRoutiedsLogInItsFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	var level slog.LevelVar
	level.Set(slog.LevelInfo)
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: &level, ReplaceAttr: dropTime}))
	zl := zapLogger(log.With("component", "tls")).Named("obtain")

	zl.Info("acquiring lock", zap.String("identifier", "routie.test"))
	zl.Warn("ARI window changed", zap.Duration("shift", 90*time.Second), zap.Strings("names", []string{"a", "b"}))
	zl.Error("could not get certificate from issuer", zap.Error(errors.New("connection refused")), zap.Int("attempt", 2))
	level.Set(slog.LevelDebug) // log.level changed while routied runs
	zl.With(zap.String("cache", "0x1")).Info("started background certificate maintenance")

	want := strings.Join([]string{
		`{"level":"WARN","msg":"ARI window changed","component":"tls","logger":"certmagic.obtain","shift":90000000000,"names":["a","b"]}`,
		`{"level":"ERROR","msg":"could not get certificate from issuer","component":"tls","logger":"certmagic.obtain","error":"connection refused","attempt":2}`,
		`{"level":"DEBUG","msg":"started background certificate maintenance","component":"tls","cache":"0x1","logger":"certmagic.obtain"}`,
	}, "\n") + "\n"
	if buf.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", buf.String(), want)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
