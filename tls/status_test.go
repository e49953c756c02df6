package tls

import (
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

func TestWarningIsForExpiryRenewalCannotPrevent(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	failed := "acme: error: 403 urn:ietf:params:acme:error:unauthorized: no route to host"
	tests := []struct {
		name string
		s    NameStatus
		want string
	}{
		{"acme, being obtained", NameStatus{Mode: conf.TLSACME}, ""},
		{"acme, first attempt failed", NameStatus{Mode: conf.TLSACME, LastError: failed},
			"no certificate yet; HTTPS for this name fails until one is obtained. Last attempt: " + failed},
		{"acme, 60 days left", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(60 * day)}, ""},
		{"acme, 60 days left, a renewal failed", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(60 * day), LastError: failed}, ""},
		{"acme, 6 days left, renewing", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(6 * day)}, ""},
		{"acme, 6 days left, renewal failed", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(6*day + time.Hour), LastError: failed},
			"expires in 6 days; renewal failed: " + failed},
		{"acme, hours left, renewal failed", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(5 * time.Hour), LastError: failed},
			"expires in 5h0m0s; renewal failed: " + failed},
		{"acme, expired", NameStatus{Mode: conf.TLSACME, NotAfter: now.Add(-2 * day), LastError: failed},
			"expired 2 days ago; clients refuse it; renewal failed: " + failed},
		{"files, 6 days left", NameStatus{Mode: conf.TLSFiles, NotAfter: now.Add(6*day + time.Hour)},
			"expires in 6 days; replace tls.cert_file and tls.key_file with a renewed pair (is certbot's timer running?)"},
		{"files, 1 day left, bad reload", NameStatus{Mode: conf.TLSFiles, NotAfter: now.Add(day + time.Hour), LastError: "key does not match"},
			"expires in 1 day; the last reload of tls.cert_file failed: key does not match"},
		{"self-signed, 3 days left", NameStatus{Mode: conf.TLSSelfSigned, NotAfter: now.Add(3*day + time.Hour)},
			"expires in 3 days; restart routied to make a new self-signed certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Warning(now); got != tt.want {
				t.Errorf("Warning() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
