package conf

import (
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that no file makes Parse panic, and that every config Parse accepts
// survives Encode and Parse unchanged. The seeds run with every `go test`; explore with
// `go test -fuzz FuzzParse ./conf/`.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"routie.example.toml", "routie.production.toml", "dev.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(everyFieldChanged().Encode())
	f.Add([]byte("health = { intervall = \"1s\", passes = 2 }\n[lisen]\nhttp = :80\n"))
	f.Add([]byte("[control]\nmode = 0o640\n[[health]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		again, err := Parse("encoded.toml", c.Encode())
		if err != nil {
			t.Fatalf("Parse accepted %q but refuses its Encode output:\n%s\n%v", data, c.Encode(), err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("Parse(Encode(c)) = %+v, want %+v", again, c)
		}
	})
}
