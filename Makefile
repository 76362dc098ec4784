# lamina: build, test, demo, bench. Everything needs root (mounts, device nodes, trusted.* xattrs).
#
#   make build   install missing apt packages, cargo build
#   make fast    format check, clippy (warnings are errors), unit tests: no root fixtures needed
#   make test    + build the test images and (with ../shared) the corpus, unit tests, driver tests
#   make demo    run a command in a busybox container whose rootfs lamina mounted
#   make bench   scripts/bench.sh: lamina vs containerd, podman, umoci, GNU tar (load and pull), then criterion, on a fresh ext4

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
IMAGES ?= /var/cache/lamina/images
CORPUS ?= /var/cache/lamina/corpus
LAMINA_SHARED ?= $(abspath $(CURDIR)/../shared)
LOGS := target/test-logs

# the driver tests read where the fixtures are from these
export LAMINA_TEST_IMAGES := $(IMAGES)
export LAMINA_CORPUS := $(CORPUS)
export LAMINA_SHARED

.PHONY: all build deps images corpus fast test unit driver demo bench clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(CARGO) build

images: deps
	scripts/build-test-images.sh $(IMAGES)

corpus: deps
	scripts/build-corpus.sh $(CORPUS)

fast: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --lib

unit: deps
	@mkdir -p $(LOGS)
	$(CARGO) test --lib 2>&1 | tee $(LOGS)/unit.log

driver: deps
	@mkdir -p $(LOGS)
	$(CARGO) test --test driver -- --test-threads=2 2>&1 | tee $(LOGS)/driver.log

test: deps images corpus
	@mkdir -p $(LOGS)
	@status=0; \
	$(CARGO) test --lib 2>&1 | tee $(LOGS)/unit.log || status=1; \
	$(CARGO) test --test driver -- --test-threads=2 2>&1 | tee $(LOGS)/driver.log || status=1; \
	echo; echo "== results =="; \
	printf 'unit:   '; grep -h '^test result:' $(LOGS)/unit.log || echo 'no result (build failed?)'; \
	printf 'driver: '; grep -h '^test result:' $(LOGS)/driver.log || echo 'no result (build failed?)'; \
	skips=$$(grep -c '^SKIP' $(LOGS)/driver.log || true); \
	[ "$$skips" = 0 ] || { echo "skipped checks: $$skips"; grep -h '^SKIP' $(LOGS)/driver.log | sort | uniq -c; }; \
	exit $$status

demo: deps
	$(CARGO) build --release
	scripts/demo.sh target/release/lamina

bench: deps
	$(CARGO) build --release
	scripts/bench.sh target/release/lamina $(CORPUS)

clean:
	$(CARGO) clean
