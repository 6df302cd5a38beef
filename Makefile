# The two commands a newcomer needs: `make run` and `make test`. Both build .venv first.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
# The anthropic 1.x SDK lives beside the 2.x one in its own import path, for the compatibility tests.
SDK1 := .cache/anthropic-sdk-1

.PHONY: run test lint emulate clean bench-stages

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

$(SDK1): | $(BIN)/python
	$(BIN)/pip install -q --no-deps --target $(SDK1) 'anthropic==1.17.0'

run: $(VENV)/.runtime
	$(BIN)/gateway demo

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layering contracts in pyproject.toml
	$(BIN)/python tools/module_sizes.py

# Coverage takes in the gateway and emulator processes the integration tests start
# ([tool.coverage.run] in pyproject.toml); the floor sits just under the measured total.
# Two workers, each running whole files (so a module's servers start once): measured on
# this 2-core machine under the same load, 692 s on one worker, 302 s on two, for the same CPU.
COVERAGE_FLOOR := 95
test: lint $(SDK1)
	$(BIN)/pytest -q -n 2 --dist loadfile --cov --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

# Per-step cost of a model call on real bodies, µs per call and per KB, and per turn of a
# replayed session (about 20 s).
bench-stages: $(VENV)/.dev
	$(BIN)/python bench/stages.py
	$(BIN)/python bench/session_stages.py

clean:
	rm -rf $(VENV) .cache .mypy_cache .pytest_cache .ruff_cache .grimp_cache .import_linter_cache
