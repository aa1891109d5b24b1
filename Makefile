# Tripwire: every developer and CI task runs from here. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Prefect 3.9.1 in its own venv: the reference server, client and engine the tests and
# benchmarks compare against; never a runtime dependency of Tripwire.
PREFECT_VENV := .venv-prefect
PREFECT_STAMP := $(PREFECT_VENV)/.installed
PREFECT_VERSION := 3.9.1

.DEFAULT_GOAL := help
.PHONY: help install prefect-env system-deps run test lint format bench bench-core bench-prefect bench-state bench-e2e bench-api bench-backtest bench-replay bench-quick conformance clean compile uncompile

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The trigger core compiled to C by mypyc (tools/compile_core.py, about 1.7x faster per
# event), rebuilt whenever a core source changes. Without a C compiler the pure-Python
# core runs: same results, slower.
CORE_SOURCES := $(wildcard service/core/*.py) service/state/memory.py tools/compile_core.py
CORE_STAMP := service/core/compiled.json
$(CORE_STAMP): $(STAMP) $(CORE_SOURCES)
	@if command -v cc >/dev/null; then $(BIN)/python tools/compile_core.py; \
	else echo "no C compiler (cc): the pure-Python core runs; install gcc, then make compile"; fi

install: $(STAMP) $(CORE_STAMP) ## create .venv, install Tripwire with its dev tools, compile the core

compile: $(STAMP) ## compile the trigger core with mypyc now (install does it when sources change)
	$(BIN)/python tools/compile_core.py

uncompile: ## remove the compiled core: the pure-Python core runs (e.g. to step through it)
	$(BIN)/python tools/compile_core.py --clean

$(PREFECT_STAMP):
	test -x $(PREFECT_VENV)/bin/python || $(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/python -m pip install --quiet 'prefect==$(PREFECT_VERSION)'
	touch $(PREFECT_STAMP)

prefect-env: $(PREFECT_STAMP) ## a separate venv with Prefect (the reference server and client)

run: install ## run the service on its embedded default (broker, worker, API, actions)
	$(BIN)/tripwire up

lint: install ## ruff (lint + format check), mypy --strict, imports only down the layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/check_layers.py

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

system-deps: ## Debian tools the tests use (kcat; headless Chromium and its chromedriver for the console); needs root, as CI has
	@command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat >/dev/null; }
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: lint system-deps prefect-env ## lint, then every test suite (unit, contract, conformance, integration)
	$(BIN)/python -m pytest

conformance: install ## the public conformance scenarios through `tripwire replay`
	$(BIN)/python tests/conformance/check.py --engine '$(BIN)/tripwire replay --automations {automations} --events {events} {ticks} {args}'

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) $(CORE_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) prefect-env ## every benchmark (~15 min), side by side with Prefect; figures and plots go to docs/benchmarks.md
	$(BIN)/python bench/harness.py --write-docs

bench-core: install ## replay throughput for 10 to 100,000 automations
	$(BIN)/python bench/bench_core.py --write-docs

bench-prefect: install prefect-env ## Tripwire's core and Prefect's engine on the same workload
	$(BIN)/python bench/bench_prefect.py --write-docs

bench-state: install ## a tick over 1,000,000 open buckets; memory and disk per bucket
	$(BIN)/python bench/bench_state.py --write-docs

bench-e2e: install ## end-to-end worker throughput and latency on the embedded broker
	$(BIN)/python bench/bench_e2e.py --write-docs

bench-api: install ## time from an API change to the worker evaluating it
	$(BIN)/python bench/bench_api.py --write-docs

bench-backtest: install ## tripwire backtest over a topic: events/s, x real time, peak RSS at two sizes
	$(BIN)/python bench/bench_backtest.py --write-docs

# BASELINE: another checkout's tripwire (e.g. ../main/.venv/bin/tripwire) to alternate with.
bench-replay: install ## whole-process `tripwire replay` on the firing-heavy workload; BASELINE=path/to/tripwire for A/B
	$(BIN)/python bench/bench_replay.py --write-docs $(if $(BASELINE),--baseline $(BASELINE))
	$(BIN)/python bench/bench_parsing.py --events bench/out/replay/firing-100000/events.jsonl

bench-quick: $(BENCH_STAMP) prefect-env ## a smoke run of the whole harness (under 2 min), writes no docs
	$(BIN)/python bench/harness.py --quick

clean: ## remove the venv, caches and the compiled core
	$(PYTHON) tools/compile_core.py --clean
	rm -rf $(VENV) $(PREFECT_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
