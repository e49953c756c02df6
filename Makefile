# routie's build. `make run` and `make test` are the two set-up commands (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/routie/routie/control.Version=$(VERSION)
BIN     := bin

.PHONY: all build run demo test vet bench clean

all: build

build: ## build routied and routiectl into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/routied ./cmd/routiectl

run: build ## start routied on the dev config: https://localhost:8443 and :8000 -> 127.0.0.1:8080, no root
	@mkdir -p var
	@echo "routied: https://localhost:8443 (self-signed) and http://localhost:8000 -> 127.0.0.1:8080"
	@echo "control: $(BIN)/routiectl --socket var/control.sock status"
	$(BIN)/routied -config conf/dev.toml

demo: ## two demo apps, load through routied, switches back and forth; prints failed requests
	bash demo/demo.sh

vet:
	$(GO) vet ./...

test: vet ## vet + the whole suite with the race detector, end-to-end tests included
	$(GO) test -race -count=1 -timeout 240s ./...

bench: ## routied vs nginx vs direct, and the switch under load (needs wrk, nginx; see bench/bench.sh)
	bash bench/bench.sh

clean:
	rm -rf $(BIN) var
