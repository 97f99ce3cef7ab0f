# giouring reaches into the runtime with //go:linkname; Go >= 1.23 refuses
# that unless the linker check is off. Every target passes the flag so a
# plain `make` never trips on it.
GOFLAGS_LD := -ldflags=-checklinkname=0
# A go.work in a parent directory (say /tmp) would put the build in
# workspace mode and break it; this repository is one module.
export GOWORK := off
GO ?= go
PKGS ?= ./...
DATA ?= ./strand-data

.PHONY: build run test test-short race bench fuzz sim lint clean

build:
	$(GO) build $(GOFLAGS_LD) -o bin/strand ./cmd/strand

run: build
	./bin/strand serve --data-dir $(DATA)

# The whole suite, as CI runs it. Packages run one at a time (-p 1): the
# crash and end-to-end tests are timing-sensitive, and on a 2-core machine
# they should not compete with each other. skipcheck prints go test's usual
# lines (and perf/e2e's passing tests), then every skipped test with its
# reason, and fails the run for a skip that .ci/allowed-skips does not name
# (a test CI never runs protects nothing).
test:
	$(GO) vet $(PKGS)
	$(GO) build -o bin/skipcheck ./cmd/skipcheck
	bin/skipcheck -allow .ci/allowed-skips -show perf/e2e -- $(GO) test -json $(GOFLAGS_LD) -race -p 1 -timeout 15m $(PKGS)

test-short:
	$(GO) test $(GOFLAGS_LD) -short $(PKGS)

bench:
	$(GO) test $(GOFLAGS_LD) -run '^$$' -bench . -benchtime 1x -timeout 30m ./shard/

# Every fuzz target, one after another (go test -fuzz takes one target at a
# time). -timeout 0: go test's default 10-minute timeout would otherwise end
# a FUZZTIME=10m run. The seed corpora in each package's testdata/fuzz/ also run as plain
# tests in `make test`.
FUZZTIME ?= 30s
FUZZPAR ?= 1
fuzz:
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzScan$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./shard/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzValidateBatch$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./shard/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzEpochCheckpoint$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./shard/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzCopyForDMA$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./dma/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./wire/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./wire/
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) -timeout 0 ./cluster/metadata/

# The replication simulator's long run: make sim SIMTIME=30m (make test runs
# its short run of 10,000 seeds). A failure prints its seed and the command
# that replays it.
SIMTIME ?= 5m
sim:
	$(GO) test $(GOFLAGS_LD) -run 'TestSimulation$$' -timeout 0 ./cluster/replication/ -duration=$(SIMTIME) -first-seed=$$(date +%s)000 -v

# goimports runs from the module proxy at a pinned version, so lint needs
# nothing installed beyond Go and adds nothing to go.mod.
GOIMPORTS ?= $(GO) run golang.org/x/tools/cmd/goimports@v0.52.0
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt would change:"; echo "$$out"; exit 1; }
	@out=$$($(GOIMPORTS) -l $$(git ls-files '*.go')); test -z "$$out" || { echo "goimports would change:"; echo "$$out"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff

clean:
	rm -rf bin
