# One entry point for people and CI. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup lock test lint typecheck pytest demo kafka-up kafka-down bench conformance clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Exact versions with hashes from requirements-dev.lock, then the project itself without
# dependencies (pip refuses anything unhashed, so nothing unpinned sneaks in).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the project and its dev tools

LOCK_OPTS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links
lock: $(STAMP)  ## re-resolve requirements*.lock from pyproject.toml (then `make setup`)
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_OPTS) -o requirements.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_OPTS) --extra msk -o requirements-msk.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_OPTS) --extra dev -o requirements-dev.lock pyproject.toml

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy (strict)
	$(BIN)/mypy

pytest: $(STAMP)  ## the test suite (starts a local Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest  ## set up and pass every check: what CI runs

kafka-up: $(STAMP)  ## start (or reuse) the local Kafka broker; prints host:port last
	@$(BIN)/python dev/kafka_local.py up

kafka-down: $(STAMP)  ## stop the local Kafka broker
	@$(BIN)/python dev/kafka_local.py down

demo: $(STAMP)  ## local Kafka + sample events + fake CleverTap + the service, then a summary
	$(BIN)/python -m dev.demo

bench: $(STAMP)  ## all benchmarks → one table, bench/results.json, bench/README.md (BENCH_ARGS=--quick)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The RudderStack vectors are third-party test data (Elastic License 2.0) kept outside the
# repository, so this is a manual check, not part of `make test`. CONFORMANCE points at check.py.
CONFORMANCE ?= $(firstword $(wildcard ../shared/conformance/check.py ../../shared/conformance/check.py))
conformance: $(STAMP)  ## the rudderstack profile against RudderStack's vectors (needs ../shared)
	@test -n "$(CONFORMANCE)" || { echo "conformance: set CONFORMANCE=path/to/check.py (not found in ../shared)"; exit 2; }
	python3 $(CONFORMANCE) --cmd "$(abspath $(BIN))/clevertap-consumer transform"

clean:  ## remove the venv and caches (not the Kafka jar cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
