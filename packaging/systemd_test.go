package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` rating routied.service may have
// (0 safest, 10 unprotected). README.md, "Running under systemd", records the current one.
const maxExposure = 2.5

// units are the unit files make install puts in /etc/systemd/system.
var units = []string{"routied.service", "app@.service"}

// needSystemdAnalyze skips the test when systemd-analyze is missing, saying how to get it;
// `make test` installs it as root (the test-deps target). Under CI it fails instead: there the
// checks must run.
func needSystemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return path
	}
	msg := "systemd-analyze is missing; to run this test: apt-get install systemd (make test-deps does it as root)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// repoRoot is the directory with the Makefile.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// makeInstall runs `make install DESTDIR=destdir` with extra variables and returns its
// output. The binaries are built into a temporary BIN, so the test leaves the work tree alone.
func makeInstall(t *testing.T, destdir string, vars ...string) string {
	t.Helper()
	args := append([]string{"-C", repoRoot(t), "--no-print-directory", "install",
		"DESTDIR=" + destdir, "BIN=" + filepath.Join(t.TempDir(), "bin")}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// execLine matches a unit's command lines and captures the program: the first word after
// the optional prefixes (-, @, +, !, :) that change how systemd runs it.
var execLine = regexp.MustCompile(`(?m)^(Exec[A-Za-z]+=[-@+!:]*)(/[^\s]+)`)

// localizeExec rewrites the programs of unit so that systemd-analyze verify, which checks that
// each one exists and is executable, finds them on this machine: routie's own binaries in
// destdir, and a stand-in in standins for another program this machine lacks (java, kill
// where procps is missing). The stand-ins are logged.
func localizeExec(t *testing.T, unit, destdir, standins string) string {
	t.Helper()
	return execLine.ReplaceAllStringFunc(unit, func(line string) string {
		m := execLine.FindStringSubmatch(line)
		key, prog := m[1], m[2]
		if _, err := os.Stat(filepath.Join(destdir, prog)); err == nil {
			return key + filepath.Join(destdir, prog)
		}
		if _, err := exec.LookPath(prog); err == nil {
			return line
		}
		stand := filepath.Join(standins, filepath.Base(prog))
		if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s is not on this machine; verifying with a stand-in for it", prog)
		return key + stand
	})
}

func TestInstalledUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	analyze := needSystemdAnalyze(t)
	destdir := t.TempDir()
	makeInstall(t, destdir)

	dir, standins := t.TempDir(), t.TempDir()
	var files []string
	for _, name := range units {
		unit := readFile(t, filepath.Join(destdir, "etc/systemd/system", name))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(localizeExec(t, unit, destdir, standins)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	// verify exits 0 even for an unknown key or a bad value (it only warns): any output is a
	// failure.
	out, err := exec.Command(analyze, append([]string{"verify"}, files...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(units, " "), err, out)
	}
}

// overallExposure matches the last line of `systemd-analyze security`.
var overallExposure = regexp.MustCompile(`Overall exposure level for routied\.service: ([0-9.]+)`)

func TestRoutiedServiceExposureIsAtMost2_5(t *testing.T) {
	analyze := needSystemdAnalyze(t)
	// The command README.md gives, run on the file in the repository.
	cmd := exec.Command(analyze, "security", "--offline=true", "systemd/routied.service")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := overallExposure.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in systemd-analyze security's output:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("routied.service: overall exposure %.1f (limit %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("routied.service is rated %.1f, above %.1f: a sandboxing line was lost or loosened; what is exposed:\n%s",
			score, maxExposure, out)
	}
}

func TestMakeInstallNeverOverwritesTheConfig(t *testing.T) {
	root := repoRoot(t)
	destdir := t.TempDir()
	makeInstall(t, destdir)

	config := filepath.Join(destdir, "etc/routie/routie.toml")
	if got, want := readFile(t, config), readFile(t, filepath.Join(root, "conf/routie.production.toml")); got != want {
		t.Fatalf("a first install should put conf/routie.production.toml at /etc/routie/routie.toml; got:\n%s", got)
	}
	if fi, err := os.Stat(config); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("/etc/routie/routie.toml: want mode 0640 (it can hold tls.eab_hmac), got %v %v", fi.Mode(), err)
	}
	edited := "# the operator's own\n[tls]\nmode = \"off\"\n"
	if err := os.WriteFile(config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}

	out := makeInstall(t, destdir)
	if got := readFile(t, config); got != edited {
		t.Fatalf("a second make install overwrote /etc/routie/routie.toml; now:\n%s\nmake said:\n%s", got, out)
	}
	if !strings.Contains(out, "kept "+config) {
		t.Errorf("make install should say it kept the existing config; it said:\n%s", out)
	}

	// Everything else is in place, and with the default PREFIX the units are the files in
	// systemd/ unchanged.
	for installed, source := range map[string]string{
		"etc/systemd/system/routied.service":   "systemd/routied.service",
		"etc/systemd/system/app@.service":      "systemd/app@.service",
		"etc/sysusers.d/routie.conf":           "systemd/routie.sysusers",
		"etc/tmpfiles.d/routie.conf":           "systemd/routie.tmpfiles",
		"etc/routie/routie.example.toml":       "conf/routie.example.toml",
		"usr/local/share/doc/routie/README.md": "README.md",
	} {
		if readFile(t, filepath.Join(destdir, installed)) != readFile(t, filepath.Join(root, source)) {
			t.Errorf("/%s differs from %s", installed, source)
		}
	}
	for _, bin := range []string{"routied", "routiectl"} {
		if fi, err := os.Stat(filepath.Join(destdir, "usr/local/bin", bin)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("/usr/local/bin/%s: want an executable, got %v", bin, err)
		}
	}
}

func TestMakeInstallPointsTheUnitAtPrefix(t *testing.T) {
	destdir := t.TempDir()
	makeInstall(t, destdir, "PREFIX=/usr")
	if _, err := os.Stat(filepath.Join(destdir, "usr/bin/routied")); err != nil {
		t.Fatalf("PREFIX=/usr: %v", err)
	}
	unit := readFile(t, filepath.Join(destdir, "etc/systemd/system/routied.service"))
	if !strings.Contains(unit, "\nExecStart=/usr/bin/routied ") || strings.Contains(unit, "/usr/local/") {
		t.Errorf("with PREFIX=/usr the unit should run /usr/bin/routied and name no /usr/local path:\n%s", unit)
	}
}

// The sysusers.d and tmpfiles.d snippets, applied to an installed tree, create the routie
// user and give it /etc/routie/routie.toml to read (mode 0640, group routie).
func TestSysusersAndTmpfilesLetRoutieReadTheConfig(t *testing.T) {
	needSystemdAnalyze(t) // the same package brings systemd-sysusers and systemd-tmpfiles
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles changes a file's group only as root")
	}
	destdir := t.TempDir()
	makeInstall(t, destdir)

	for _, args := range [][]string{
		{"systemd-sysusers", "--root=" + destdir, filepath.Join(destdir, "etc/sysusers.d/routie.conf")},
		{"systemd-tmpfiles", "--root=" + destdir, "--create", filepath.Join(destdir, "etc/tmpfiles.d/routie.conf")},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	gid := ""
	for _, line := range strings.Split(readFile(t, filepath.Join(destdir, "etc/group")), "\n") {
		if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == "routie" {
			gid = f[2]
		}
	}
	if gid == "" || !strings.Contains(readFile(t, filepath.Join(destdir, "etc/passwd")), "routie:x:") {
		t.Fatalf("systemd-sysusers created no routie user and group")
	}
	fi, err := os.Stat(filepath.Join(destdir, "etc/routie/routie.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.Itoa(int(fileGID(fi))); fi.Mode().Perm() != 0o640 || got != gid {
		t.Errorf("/etc/routie/routie.toml: want mode 0640 group routie (%s), got %v group %s", gid, fi.Mode(), got)
	}
}

func fileGID(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Gid }
