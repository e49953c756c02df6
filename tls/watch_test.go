package tls

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFilesReplacedByRenameAreServedLiveAndOpenConnectionsKeepWorking(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	first := ca.issue(t, "localhost")
	certFile, keyFile := writePair(t, dir, first)
	log, _ := newTestLogger(t)
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", log, testOptions())
	addr := serve(t, certs)
	open, err := dial(t, addr, ca.pool(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	get(t, open)

	second := ca.issue(t, "localhost")
	writePair(t, dir, second)
	waitFor(t, "the new certificate to be served", func() bool { return servedSerial(t, addr) == second.serial() })

	if got := certs.Current().Serial; got != second.serial() {
		t.Errorf("Current().Serial = %s, want %s", got, second.serial())
	}
	get(t, open)
	if got := open.ConnectionState().PeerCertificates[0].SerialNumber.Text(16); got != first.serial() {
		t.Errorf("open connection's certificate changed to %s", got)
	}
}

func TestFilesWrittenInPlaceAreReloaded(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, ca.issue(t, "localhost"))
	log, _ := newTestLogger(t)
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", log, testOptions())
	addr := serve(t, certs)

	second := ca.issue(t, "localhost")
	if err := os.WriteFile(keyFile, second.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, second.chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rewritten certificate to be served", func() bool { return servedSerial(t, addr) == second.serial() })
}

func TestFilesMismatchedReplacementIsRefusedAndTheOldCertificateKeepsServing(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	first := ca.issue(t, "localhost")
	certFile, keyFile := writePair(t, dir, first)
	log, logs := newTestLogger(t)
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", log, testOptions())
	addr := serve(t, certs)

	second := ca.issue(t, "localhost")
	writeFile(t, certFile, second.chainPEM) // the new certificate, the old key
	waitFor(t, "the mismatch to be logged", func() bool {
		return logs.contains("level=ERROR") && logs.contains("does not match")
	})
	for _, want := range []string{"still serving the previous certificate", "cert_file=" + certFile, "key_file=" + keyFile} {
		if !logs.contains(want) {
			t.Errorf("error log does not contain %q", want)
		}
	}
	if got := servedSerial(t, addr); got != first.serial() {
		t.Fatalf("served serial %q after a mismatched replacement, want the old %s", got, first.serial())
	}
	if _, err := dial(t, addr, ca.pool(), "localhost"); err != nil {
		t.Fatalf("handshake with the old certificate: %v", err)
	}

	// The watcher survives the error: the matching key arriving completes the pair.
	writeFile(t, keyFile, second.keyPEM)
	waitFor(t, "the completed pair to be served", func() bool { return servedSerial(t, addr) == second.serial() })
}

func TestFilesBehindSymlinksSwappedLikeCertbotAreReloaded(t *testing.T) {
	// certbot keeps live/NAME/fullchain.pem as a symlink into archive/NAME/ and renews by
	// writing fullchainN+1.pem there and renaming a new symlink over the live one.
	ca := newTestCA(t)
	root := t.TempDir()
	live, archive := filepath.Join(root, "live"), filepath.Join(root, "archive")
	for _, d := range []string{live, archive} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		tmp := filepath.Join(live, name+".new")
		if err := os.Symlink(filepath.Join("..", "archive", target), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(live, name)); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(n string) testPair {
		t.Helper()
		p := ca.issue(t, "localhost")
		writeFile(t, filepath.Join(archive, "fullchain"+n+".pem"), p.chainPEM)
		writeFile(t, filepath.Join(archive, "privkey"+n+".pem"), p.keyPEM)
		link("privkey"+n+".pem", "privkey.pem")
		link("fullchain"+n+".pem", "fullchain.pem")
		return p
	}
	first := issue("1")
	log, _ := newTestLogger(t)
	certs := newTestCertificates(t, filesConf(filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem")), "", log, testOptions())
	addr := serve(t, certs)
	if got := servedSerial(t, addr); got != first.serial() {
		t.Fatalf("served %q, want %s", got, first.serial())
	}

	second := issue("2")
	waitFor(t, "the renewed certificate to be served", func() bool { return servedSerial(t, addr) == second.serial() })
}

func TestCloseReturnsOnlyAfterTheWatcherHasExited(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := writePair(t, t.TempDir(), ca.issue(t, "localhost"))
	certs, err := newCertificates(t.Context(), filesConf(certFile, keyFile), host{}, nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	f := certs.current.Load().source.(*files)
	if closedWithin(f.done, 50*time.Millisecond) {
		t.Fatal("watcher exited before Close")
	}
	certs.Close()
	select {
	case <-f.done:
	default:
		t.Fatal("Close returned while the watcher was running")
	}
	certs.Close() // a second Close is harmless
}

func TestCancelledContextStopsTheWatcher(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	first := ca.issue(t, "localhost")
	certFile, keyFile := writePair(t, dir, first)
	ctx, cancel := context.WithCancel(t.Context())
	certs, err := newCertificates(ctx, filesConf(certFile, keyFile), host{}, nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(certs.Close)
	f := certs.current.Load().source.(*files)

	cancel()
	if !closedWithin(f.done, 5*time.Second) {
		t.Fatal("watcher still running after its context was cancelled")
	}
	// Handshakes still get the last certificate.
	if got := servedSerial(t, serve(t, certs)); got != first.serial() {
		t.Fatalf("served %q after cancel, want %s", got, first.serial())
	}
}
