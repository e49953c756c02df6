package switcher_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

// The tests of this package run routied's core on real sockets (testrig): a proxy in front of
// apps on 127.0.0.1, and its switcher.

// newRig starts the proxy and a switcher with settings st serving initial ("host:port").
func newRig(t *testing.T, initial string, st switcher.Settings) *testrig.Rig {
	t.Helper()
	return testrig.NewRig(t, initial, testrig.Options{Settings: st})
}

// newRigWithStore is newRig with the switcher's state in store, which another rig may share.
func newRigWithStore(t *testing.T, initial string, st switcher.Settings, store *switcher.Store) *testrig.Rig {
	t.Helper()
	return testrig.NewRig(t, initial, testrig.Options{Settings: st, Store: store})
}

// get fetches path through the proxy and returns the status and the X-App header.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-App")
}

func switchTo(t *testing.T, sw *switcher.Switcher, target string) switcher.Report {
	t.Helper()
	rep, err := sw.Switch(context.Background(), target, switcher.SwitchOptions{})
	if err != nil {
		t.Fatalf("switch to %s: %v", target, err)
	}
	return rep
}
