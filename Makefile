# Puhui — the two commands are `make run` and `make test`; see README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-installed-stamp

.PHONY: run test lint bench install clean-var

# (Re)install when pyproject.toml changes; creates the virtual environment if missing.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Puhui needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The peers the benchmarks compare against (optbinning, toad, xgboost) only for `make bench`.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

install: $(STAMP)

## Start the platform on the embedded default: SQLite and local keys under var/, port 8000.
run: $(STAMP)
	$(BIN)/puhui migrate
	$(BIN)/puhui serve

## The whole test suite, on SQLite and (when reachable) PostgreSQL.
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

## Benchmarks: results in benchmarks/results/, summarised in BENCHMARKS.md.
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-var:
	rm -rf var/
