# simbulk developer tasks. `make help` lists them.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
BIN      := bin/simbulk
# Every package runs under the race detector: the pipeline, providers,
# simulators and the ingest read-ahead are all concurrent, and one pass
# with -race is cheaper than a plain pass plus a race pass.
TEST_PKGS ?= ./...
FUZZTIME  ?= 10s
# Go minimises every input that finds new coverage, up to 60s each by
# default, which would eat a short run; a crasher is saved either way.
FUZZMINIMIZE ?= 200x
BENCH_ROWS ?= 100000,1000000

# The samples `make demo` validates; each must come out clean.
DEMO_SAMPLES := \
	"samples/mixed.csv" \
	"samples/mixed.xlsx" \
	"samples/iotconnect.csv --provider iotconnect" \
	"samples/asavie.xlsx --provider asavie" \
	"samples/thingspace.csv --provider thingspace"

.PHONY: help build test chromium postgresql demo bench fuzz lint samples clean

help:
	@echo "make build    build $(BIN)"
	@echo "make test     every test, under the race detector"
	@echo "make demo     validate the samples, then provision samples/mixed.csv against the simulators"
	@echo "make bench    validation, load, engine vs their floors; rollout overhead, rate, resume cost, memory; console upload"
	@echo "make fuzz     run every Fuzz target for FUZZTIME (default $(FUZZTIME)) each"
	@echo "make lint     gofmt and go vet"
	@echo "make samples  regenerate samples/ (go generate ./samples)"

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/simbulk

test: chromium postgresql
	$(GO) test -race -timeout 15m $(TEST_PKGS)

# The browser tests (the console, summary.html) drive headless Chromium
# (Debian's package). It is installed here when missing and this user can;
# if not, they skip on a workstation and fail under CI=true, where they
# must run.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium for the browser tests"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; } || \
			echo "could not install chromium; the browser tests will not run"; \
		else \
			echo "chromium is not installed (apt-get install chromium): the browser tests will not run"; \
		fi; }

# The Postgres checkpoint's tests start a throwaway server from Debian's
# postgresql binaries (/usr/lib/postgresql/*/bin). They are installed here
# when missing and this user can; if not, those tests skip on a
# workstation and fail under CI=true, where they must run.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing postgresql for the Postgres checkpoint's tests"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; } || \
			echo "could not install postgresql; the Postgres checkpoint's tests will not run"; \
		else \
			echo "postgresql is not installed (apt-get install postgresql): the Postgres checkpoint's tests will not run"; \
		fi; }

# The demo validates the samples, then provisions the mixed sample against
# the built-in simulators (in-process, no network, no credentials) with a
# fresh checkpoint under bin/demo, and shows the run's status.
DEMO_DIR := bin/demo
demo: build
	@set -e; for s in $(DEMO_SAMPLES); do \
		echo "\$$ simbulk validate $$s"; $(BIN) validate $$s; echo; \
	done
	@echo "\$$ simbulk validate samples/broken.csv"; \
	$(BIN) validate samples/broken.csv || { rc=$$?; echo "(exit status $$rc: some rows are invalid, as intended)"; test $$rc -eq 3; }
	@rm -rf $(DEMO_DIR); mkdir -p $(DEMO_DIR)
	@echo; echo "\$$ simbulk run samples/mixed.csv --simulate --db $(DEMO_DIR)/simbulk.db --out $(DEMO_DIR)/runs"
	@$(BIN) run samples/mixed.csv --simulate --db $(DEMO_DIR)/simbulk.db --out $(DEMO_DIR)/runs
	@echo; echo "\$$ simbulk status --db $(DEMO_DIR)/simbulk.db"
	@$(BIN) status --db $(DEMO_DIR)/simbulk.db
	@echo; echo "Checkpoint: $(DEMO_DIR)/simbulk.db   Reports: $(DEMO_DIR)/runs/<run-id>/"
	@echo; echo "The web console, over the same checkpoint and simulators:"
	@echo "  $(BIN) serve --simulate --db $(DEMO_DIR)/simbulk.db --out $(DEMO_DIR)/runs --data $(DEMO_DIR)/console"
	@echo "then open http://127.0.0.1:8080 and log in as demo with the one-time password it prints."

# The table of CPU-bound work against its floors (validation against a
# bare CSV read, the manifest load against bare prepared inserts, the
# engine against a bare errgroup loop), then the rollout engine: overhead
# against a bare errgroup loop, rate-limit adherence, resume cost and peak
# memory (the million-row parts take several minutes; ROLLOUT_BENCH=-quick
# runs those small for a first look), then the reports of a million-row
# run and their peak memory.
ROLLOUT_BENCH ?=
bench:
	$(GO) build -o bin/benchrollout ./pipeline/internal/benchrollout
	$(GO) run ./ingest/internal/benchmanifest -rows $(BENCH_ROWS) -engine bin/benchrollout
	$(GO) run ./pipeline/internal/benchrollout $(ROLLOUT_BENCH)
	SIMBULK_BIG=1 $(GO) test -run '^TestBigRunMemory$$' -count=1 -v ./reports/
	$(MAKE) build
	$(GO) run ./cmd/simbulk/console/internal/benchupload -simbulk $(BIN) -rows $(BENCH_ROWS)

# Fuzz targets are discovered, so new ones are run without editing this.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
		done; \
	done

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

samples:
	$(GO) generate ./samples

clean:
	rm -rf bin
