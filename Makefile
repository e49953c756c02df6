# routie's build. `make run` and `make test` are the two set-up commands (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/routie/routie/control.Version=$(VERSION)
BIN     := bin

# `make install`: PREFIX for the binaries and docs; DESTDIR to stage into a directory (a
# package build). systemd reads its units, sysusers.d and tmpfiles.d from /etc whatever PREFIX
# is, so those go there (UNITDIR to change it); the units' /usr/local paths follow PREFIX.
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      := $(PREFIX)/bin
DOCDIR      := $(PREFIX)/share/doc/routie
UNITDIR     ?= /etc/systemd/system
SYSUSERSDIR := /etc/sysusers.d
TMPFILESDIR := /etc/tmpfiles.d
CONFDIR     := /etc/routie

.PHONY: all build run demo test test-deps vet bench install clean

all: build

build: ## build routied and routiectl into bin/
	@# CGO off: a static binary maps no libc, about 1 MiB less resident memory.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/routied ./cmd/routiectl

run: build ## start routied on the dev config: https://localhost:8443 and :8000 -> 127.0.0.1:8080, no root
	@mkdir -p var
	@echo "routied: https://localhost:8443 (self-signed) and http://localhost:8000 -> 127.0.0.1:8080"
	@echo "control: $(BIN)/routiectl --socket var/control.sock status"
	$(BIN)/routied -config conf/dev.toml

demo: ## two demo apps, load through routied, switches back and forth; prints failed requests
	bash demo/demo.sh

vet:
	$(GO) vet ./...

test: vet test-deps ## vet + the whole suite with the race detector, end-to-end tests included
	$(GO) test -race -count=1 -timeout 240s ./...

# The tests in packaging/ check systemd/ with systemd-analyze (verify, security). On a machine
# without it: as root (CI), install Debian's systemd package, which only adds files there and
# starts nothing; otherwise say what to run, and those tests skip.
test-deps: ## install what `make test` needs beyond Go (as root), or say what to install
	@if command -v systemd-analyze >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "test-deps: installing Debian's systemd package for systemd-analyze, which packaging/ tests run on systemd/*.service (it starts nothing here)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd; \
	else \
		echo "test-deps: systemd-analyze is missing: packaging/ tests will skip. To run them: sudo apt-get install systemd"; \
	fi

install: build ## install binaries, systemd units, the routie user and /etc/routie (PREFIX=/usr/local, DESTDIR=)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(CONFDIR)
	install -m 0755 $(BIN)/routied $(BIN)/routiectl $(DESTDIR)$(BINDIR)/
	for unit in routied.service app@.service; do \
		sed 's|/usr/local/|$(PREFIX)/|g' systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -m 0644 systemd/routie.sysusers $(DESTDIR)$(SYSUSERSDIR)/routie.conf
	install -m 0644 systemd/routie.tmpfiles $(DESTDIR)$(TMPFILESDIR)/routie.conf
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 conf/routie.example.toml $(DESTDIR)$(CONFDIR)/routie.example.toml
	@# The config is the operator's: installed once, never overwritten.
	@if [ -e $(DESTDIR)$(CONFDIR)/routie.toml ] || [ -L $(DESTDIR)$(CONFDIR)/routie.toml ]; then \
		echo "kept $(DESTDIR)$(CONFDIR)/routie.toml: an existing config is never overwritten (every key: routie.example.toml beside it)"; \
	else \
		install -m 0640 conf/routie.production.toml $(DESTDIR)$(CONFDIR)/routie.toml && \
		echo "installed $(DESTDIR)$(CONFDIR)/routie.toml: set tls.domains and tls.email, then: routied -check -config $(CONFDIR)/routie.toml"; \
	fi
	@# Only on the real system: create the routie user, give routie.toml to its group, and
	@# let systemd see the new units. A DESTDIR install leaves that to the package.
	@if [ -z "$(DESTDIR)" ]; then \
		command -v systemd-sysusers >/dev/null || { echo "install: no systemd-sysusers; create the routie user and group yourself"; exit 1; }; \
		systemd-sysusers $(SYSUSERSDIR)/routie.conf && \
		systemd-tmpfiles --create $(TMPFILESDIR)/routie.conf && \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi && \
		echo "next: systemctl enable --now routied   (stop nginx first: routied takes 80 and 443)"; \
	fi

bench: ## routied vs nginx vs direct, and the switch under load (needs wrk, nginx; see bench/bench.sh)
	bash bench/bench.sh

clean:
	rm -rf $(BIN) var
