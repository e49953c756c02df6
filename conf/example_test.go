package conf

import (
	"os"
	"reflect"
	"strings"
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

func TestProductionExampleIsACMEAndNeedsOnlyYourNamesAndEmail(t *testing.T) {
	data, err := os.ReadFile("routie.production.toml")
	if err != nil {
		t.Fatal(err)
	}
	// As shipped, its placeholders are refused, so a copy that was not edited cannot ask
	// Let's Encrypt for example.com.
	_, err = Parse("routie.toml", data)
	want := `routie.toml:16: tls.domains: ["example.com", "www.example.com"] lists the example's placeholders "example.com" and "www.example.com"; write the names this host serves, whose DNS points here
routie.toml:18: tls.email: "ops@example.com" is the example's placeholder; write an address you read, such as "ops@your-domain.com"`
	if err == nil || err.Error() != want {
		t.Errorf("routie.production.toml as shipped: Parse error =\n%v\nwant\n%s", err, want)
	}

	edited := strings.ReplaceAll(string(data), "example.com", "routie.dev")
	c, err := Parse("routie.toml", []byte(edited))
	if err != nil {
		t.Fatalf("routie.production.toml with names and email filled in: %v", err)
	}
	wantConfig := Default()
	wantConfig.TLS.Mode = TLSACME
	wantConfig.TLS.Domains = []string{"routie.dev", "www.routie.dev"}
	wantConfig.TLS.Email = "ops@routie.dev"
	if !reflect.DeepEqual(c, wantConfig) {
		t.Errorf("routie.production.toml, filled in =\n%+v\nwant Default() with acme, names and email:\n%+v", c, wantConfig)
	}
}
