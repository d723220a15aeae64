# agentd — `make run` to start it, `make test` to check everything.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

NPM_STAMP := node_modules/.install-stamp
BIN := node_modules/.bin
# buf runs protoc-gen-es from node_modules/.bin.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
TEST_FILES = $(shell find test -name '*.test.ts' -not -path 'test/install/*' | sort)
# Tests that pack and install the package (building native modules from source) run last, on their own clock.
INSTALL_TEST_FILES = $(shell find test/install -name '*.test.ts' | sort)
INSTALL_TEST_TIMEOUT_MS ?= 2400000
# Test files run in parallel processes; each test starts its own servers.
TEST_CONCURRENCY ?= 2
# A test that hangs fails after this long instead of stalling the run.
TEST_TIMEOUT_MS ?= 180000

.PHONY: install gen check-gen typecheck lint build test test-only run bench clean

$(NPM_STAMP): package.json package-lock.json
	@echo "installing dependencies with npm ci (native modules build from source; this takes a minute or two)"
	npm ci --no-audit --no-fund --foreground-scripts --loglevel=http
	@touch $@

install: $(NPM_STAMP)

## gen: regenerate gen/ from proto/ with buf + protoc-gen-es
gen: install
	$(BIN)/buf generate

## check-gen: fail when gen/ differs from what `buf generate` writes
check-gen: gen
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		echo "gen/ is stale: run 'make gen' and commit the result" >&2; \
		git status --porcelain -- gen >&2; exit 1; fi

typecheck: install
	$(BIN)/tsc -p tsconfig.json --noEmit
	$(BIN)/tsc -p web/tsconfig.json --noEmit

lint: install
	$(BIN)/buf lint
	$(BIN)/eslint .

build: install
	$(BIN)/tsc -p tsconfig.build.json
	node scripts/build-info.mjs
	node scripts/build-web.mjs

test: check-gen typecheck lint build test-only

## test-only: run the tests against the current build
test-only:
	node --import tsx --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=$(TEST_TIMEOUT_MS) \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=./test/helpers/summary-reporter.mjs --test-reporter-destination=stdout \
		$(TEST_FILES)
	node --import tsx --test --test-timeout=$(INSTALL_TEST_TIMEOUT_MS) \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=./test/helpers/summary-reporter.mjs --test-reporter-destination=stdout \
		$(INSTALL_TEST_FILES)

## run: start agentd with the embedded upstream (no coderd needed)
run: build
	bin/agentd serve

bench: build
	@for f in bench/*.ts; do echo "== $$f"; node --import tsx "$$f"; done

clean:
	rm -rf dist
