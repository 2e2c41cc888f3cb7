# The two set-up commands are `make run` and `make test`; both install what
# a fresh machine lacks first.

GO        ?= go
BIN       := $(CURDIR)/bin
CUE_VER   := v0.17.1
export FAAS_FERRETDB_BIN := $(BIN)/ferretdb
export CUE := $(BIN)/cue

.PHONY: run test bench build deps browser tools lint clean

run: deps build
	$(BIN)/faas up

build: deps
	$(GO) build -o $(BIN)/faas .

test: deps browser tools lint
	bash deploy/check.sh
	@# The images cannot be built without a Docker engine; their definitions
	@# can still be checked where buildx is installed.
	@if docker buildx version >/dev/null 2>&1; then \
		out=$$(docker buildx bake --print 2>&1) || { echo "$$out"; exit 1; }; echo "docker-bake.hcl: ok"; \
	fi
	@# Compose's own check of docker-compose.yml, with the v2 plugin or the
	@# v1 docker-compose, whichever is installed. make does not install
	@# one: Debian's docker-compose pulls in a whole Docker engine. What it
	@# cannot check (variables the roles read, secrets they are handed, the
	@# images bake builds) TestComposeFile checks everywhere.
	@if docker compose version >/dev/null 2>&1; then compose="docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then compose=docker-compose; fi; \
	if [ -n "$$compose" ]; then $$compose config -q && echo "docker-compose.yml: ok ($$compose)"; fi
	$(GO) test -race -count=1 -timeout 20m ./...

# `make bench` measures every target of the performance issue (README,
# Performance). PEERS is the folder of the systems to run side by side
# (River, BullMQ), ../shared/peers when it exists; PRELOAD=1 measures a
# store of 1,000,000 finished jobs too; BENCH_FLAGS adds flags of `faas
# bench` (-quick, -jobs N, ...).
PEERS   ?= $(wildcard ../shared/peers)
PRELOAD ?=
bench: deps build
	@if [ -z "$(PEERS)" ]; then echo "bench: no peers folder (PEERS is empty and ../shared/peers missing): River and BullMQ are skipped"; fi
	$(BIN)/faas bench $(if $(PEERS),-peers $(PEERS)) $(if $(PRELOAD),-preload) $(BENCH_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# libzmq and pkg-config come from Debian's packages; as root we install
# them, otherwise we say what is missing.
deps:
	@if ! pkg-config --exists libzmq 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing libzmq3-dev and pkg-config"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzmq3-dev pkg-config >/dev/null; \
		else \
			echo "libzmq is missing: run 'sudo apt-get install -y libzmq3-dev pkg-config'" >&2; exit 1; \
		fi; \
	fi

# The dashboard's test drives Debian's chromium; only the tests need it.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing, so the dashboard's browser test will skip: run 'sudo apt-get install -y chromium'" >&2; \
		fi; \
	fi

# cue checks the deployment module; FerretDB is the MongoDB-compatible
# server the Mongo backend's tests run against. It lives in its own module
# so its dependencies stay out of ours.
tools: $(BIN)/cue $(BIN)/ferretdb

$(BIN)/cue:
	GOBIN=$(BIN) $(GO) install cuelang.org/go/cmd/cue@$(CUE_VER)

$(BIN)/ferretdb:
	cd dbmanager/internal/ferretdb && $(GO) build -o $(BIN)/ferretdb .

clean:
	rm -rf $(BIN)
