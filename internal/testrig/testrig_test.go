package testrig_test

import (
	"os/exec"
	"strings"
	"testing"
)

func TestRoutiedDoesNotLinkTestrig(t *testing.T) {
	for _, cmd := range []string{"routied", "routiectl"} {
		// go test puts its own go command first in PATH.
		out, err := exec.Command("go", "list", "-deps", "github.com/routie/routie/cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps ./cmd/%s: %v\n%s", cmd, err, out)
		}
		for pkg := range strings.FieldsSeq(string(out)) {
			if strings.HasSuffix(pkg, "/internal/testrig") {
				t.Errorf("%s links %s; it is for tests only", cmd, pkg)
			}
		}
	}
}
