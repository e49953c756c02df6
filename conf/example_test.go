package conf

import (
	"os"
	"reflect"
	"testing"
	"time"
)

func TestExampleFileIsExactlyTheDefault(t *testing.T) {
	c, err := Load("routie.example.toml")
	if err != nil {
		t.Fatalf("routie.example.toml does not load: %v", err)
	}
	c.Path = ""
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("routie.example.toml sets\n%+v\nbut Default() is\n%+v\nupdate one to match the other", c, Default())
	}
}

func TestExampleFileWritesEveryKey(t *testing.T) {
	data, err := os.ReadFile("routie.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	written := scanPositions(data)
	for _, key := range schemaKeys() {
		if _, ok := written[key]; !ok {
			t.Errorf("routie.example.toml does not write %s; add it with its default and a comment", key)
		}
	}
}

func TestDevConfigRunsWithoutRootFromTheRepoRoot(t *testing.T) {
	c, err := Load("dev.toml")
	if err != nil {
		t.Fatalf("dev.toml does not load: %v", err)
	}
	want := Default()
	want.Path = "dev.toml"
	want.Listen = Listen{HTTP: ":8000", HTTPS: ":8443"}
	want.TLS.Domains = []string{"localhost", "127.0.0.1"}
	want.Control.Socket = "var/control.sock"
	want.State.Dir = "var/state"
	want.Upstream.Initial = 8080
	want.Health.Interval = time.Second
	want.Health.Passes = 2
	want.Health.Wait = 30 * time.Second
	want.Log.Format = "auto"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("dev.toml =\n%+v\nwant\n%+v", c, want)
	}
}
