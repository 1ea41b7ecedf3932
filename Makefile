# Toolbus — the two commands that matter: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
BIN     := $(CURDIR)/bin
PKGS    := github.com/toolbus/toolbus/...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Modules in the workspace (go.work); the tools modules stay outside it so
# their dependencies never leak into the services.
MODULES := . cmd/toolbus services/mcp-front services/rest-worker services/graphql-worker services/webhook-ingest services/state-updater
export PATH := $(BIN):$(PATH)
# Build with the toolchain go.work pins (go1.26.10: go1.26.8 has reachable
# net/http and crypto/x509 vulnerabilities, see `make vulncheck`). Machines
# whose Go defaults to GOTOOLCHAIN=local fetch it once from the module proxy.
export GOTOOLCHAIN ?= auto

.PHONY: help
help: ## List targets.
	@grep -hE '^[a-z][a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: run
run: build ## Start the whole system (embedded NATS, demo upstream, demo catalog) and print how to connect.
	$(BIN)/toolbus demo

.PHONY: build
build: ## Build bin/toolbus.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/toolbus ./cmd/toolbus

.PHONY: test
test: tools $(BIN)/jaeger openapi-specs proto-check vet modules-check ## Run the whole test suite (unit, integration, process end-to-end, manifests, cluster, short fuzz).
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	$(MAKE) --no-print-directory vulncheck k8s-validate cluster-test fuzz-short bench-smoke console-e2e mcp-typescript

.PHONY: vet
vet: ## go vet every module.
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

.PHONY: modules-check
modules-check: ## Build every service module on its own (GOWORK=off), as its Dockerfile or a consumer would.
	@for m in $(filter-out .,$(MODULES)); do \
	  (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...) || { echo "module $$m does not build on its own: run make tidy"; exit 1; }; \
	done; echo "modules: each builds with GOWORK=off"

FUZZTIME ?= 3s
.PHONY: fuzz-short
fuzz-short: ## Run every fuzz target briefly (FUZZTIME each).
	@for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/toolbus-fuzz.log 2>&1 || { cat /tmp/toolbus-fuzz.log; exit 1; }; \
	  done; \
	done

.PHONY: fuzz
fuzz: ## Run every fuzz target for longer.
	$(MAKE) fuzz-short FUZZTIME=60s

.PHONY: tools
tools: $(BIN)/nats-server $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Build pinned tools into bin/ (from tools/go.mod).

$(BIN)/nats-server $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: tools/go.mod
	cd tools && GOWORK=off $(GO) build -o $(BIN)/ github.com/nats-io/nats-server/v2 google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

$(BIN)/buf: tools/buf/go.mod
	cd tools/buf && GOWORK=off $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf

.PHONY: test-faults soak vulncheck
test-faults: tools ## Fault suite, long form (~4 min): kill -9 of every process, NATS restart, SIGSTOP, hostile upstream; prints sent/acknowledged/stored/duplicated/lost.
	cd cmd/toolbus && $(GO) test -race -count=1 -timeout 15m -run '^TestFaults$$' -v . -faults

soak: tools ## 10-minute soak under repeated faults: latency percentiles, heap, RSS and goroutines per process every 30s (not in CI).
	cd cmd/toolbus && $(GO) test -count=1 -timeout 30m -run '^TestFaults$$' -v . -faults.soak=10m

VULNDB := $(BIN)/vulndb
vulncheck: $(BIN)/govulncheck $(VULNDB)/index/db.json ## govulncheck every workspace module against the pinned vulnerability database (tools/vulndb).
	$(BIN)/govulncheck -db file://$(VULNDB) $(PKGS)

$(BIN)/govulncheck: tools/go.mod
	cd tools && GOWORK=off $(GO) build -o $(BIN)/ golang.org/x/vuln/cmd/govulncheck

# The database's own web host is not reachable from every build machine;
# the module proxy ships the same reports (golang.org/x/vulndb, data/osv),
# pinned in tools/vulndb/go.mod, and its indexdb makes them a v1 database.
$(VULNDB)/index/db.json: tools/vulndb/go.mod
	cd tools/vulndb && GOWORK=off $(GO) build -o $(BIN)/ golang.org/x/vulndb/cmd/indexdb
	rm -rf $(VULNDB)
	$(BIN)/indexdb -vulns "$$(cd tools/vulndb && GOWORK=off $(GO) list -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv" -out $(VULNDB)

.PHONY: console-e2e
console-e2e: build ## Operator console end to end in Debian's headless Chromium (installs chromium + pinned playwright-core on first run).
	console/e2e/setup.sh
	cd console/e2e && TOOLBUS_BIN=$(BIN)/toolbus SCREENSHOT_DIR=$${SCREENSHOT_DIR:-$$(mktemp -d)} node --test --test-reporter=spec console.test.mjs

.PHONY: mcp-typescript
mcp-typescript: build ## Toolbus served to the official MCP TypeScript SDK client over Streamable HTTP (installs the pinned SDK on first run).
	test/mcp-typescript/setup.sh
	cd test/mcp-typescript && TOOLBUS_BIN=$(BIN)/toolbus node --test --test-reporter=spec client.test.mjs

.PHONY: openapi-specs
openapi-specs: ## Fetch the pinned large OpenAPI documents (Stripe, GitHub) that the openapi tests and benchmarks import.
	openapi/testdata/fetch.sh

.PHONY: bench bench-smoke
BENCH_FLAGS ?=
bench: tools bench-go ## Benchmark Toolbus against its floors and an npm peer (~9 min); writes bench/results and docs/perf/*.svg.
	bench/peer/setup.sh || echo "bench: peer not installed; its scenario will be skipped"
	cd bench && GOWORK=off GOFLAGS=-mod=mod $(GO) run ./cmd/toolbus-bench -out results -charts ../docs/perf $(BENCH_FLAGS)

# The hot paths one by one (Go benchmarks), written to bench/results/go.txt.
BENCH_GO := \
	BusRoundTrip:./bus \
	QuotaNoLimitHit:./upstream \
	ValidateArguments:./catalog \
	Verify:./signature \
	Handle:./services/rest-worker \
	Handle:./services/graphql-worker \
	Import:./openapi
.PHONY: bench-go
bench-go: ## Go benchmarks of each hot path (bus round trip, quota layer, argument validation, signatures, REST and GraphQL handlers, OpenAPI import).
	@mkdir -p bench/results; : > bench/results/go.txt
	@for b in $(BENCH_GO); do \
	  name=$${b%%:*}; pkg=$${b#*:}; \
	  $(GO) test -run '^$$' -bench "^Benchmark$$name" -benchmem -count 3 $$pkg | tee -a bench/results/go.txt | grep -E '^Benchmark'; \
	done

bench-smoke: tools ## Prove the benchmark works (under a minute; no timing assertions).
	cd bench && GOWORK=off GOFLAGS=-mod=mod $(GO) vet ./... && GOWORK=off GOFLAGS=-mod=mod $(GO) test -count=1 ./...
	cd bench && GOWORK=off GOFLAGS=-mod=mod $(GO) run ./cmd/toolbus-bench -smoke -out $$(mktemp -d)

.PHONY: jaeger jaeger-bin
jaeger-bin: $(BIN)/jaeger ## Build the pinned Jaeger all-in-one into bin/ (tools/jaeger/go.mod; ~7 min cold, ~1 min cached).

$(BIN)/jaeger: tools/jaeger/go.mod
	cd tools/jaeger && GOWORK=off $(GO) build -trimpath -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

jaeger: $(BIN)/jaeger ## Run Jaeger on loopback (OTLP 4317/4318, API 16686); then OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 make run
	$(BIN)/jaeger --config file:$(CURDIR)/tools/jaeger/config.yaml

.PHONY: proto
proto: tools ## Regenerate gen/ from proto/.
	$(BIN)/buf lint
	$(BIN)/buf generate

.PHONY: proto-check
proto-check: tools ## Fail when gen/ is stale against proto/.
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  $(BIN)/buf lint; \
	  $(BIN)/buf generate -o $$tmp; \
	  if ! diff -r $$tmp/gen gen >/dev/null; then diff -r $$tmp/gen gen | head -40; echo "gen/ is stale: run make proto"; exit 1; fi; \
	  echo "proto: generated code is up to date"

.PHONY: tidy
tidy: ## go mod tidy every module.
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

include deploy/Makefile.inc

.PHONY: clean
clean: ## Remove build outputs and local data.
	rm -rf $(BIN) data
