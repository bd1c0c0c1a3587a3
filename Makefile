# Quick start: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch is pinned to the CPU build through constraints.txt, so no resolver ever pulls CUDA wheels.
PIP_INSTALL := $(PIP) install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test contract lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/nightscan demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q

# The HTTP contract held by schemathesis (no token, then an admin token): 0 server errors,
# 0 schema violations. Bounded: a few minutes at most on 2 cores.
contract: $(VENV)/.installed-dev
	$(BIN)/python scripts/contract_check.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/registry_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
