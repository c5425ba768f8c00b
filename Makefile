# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev

.PHONY: demo test install dev lint bench bench-rules clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)
dev: $(DEV)

## make demo: set up, initialise the SQLite database and run the main job
demo: $(STAMP)
	$(BIN)/oms init
	$(BIN)/oms demo

## make test: set up with the dev extras and run the whole test suite (and the linter)
test: $(DEV)
	$(BIN)/ruff check .
	@# The tests start hundreds of `oms` commands; compiled once here, none of them compiles the package again
	@# (an environment with PYTHONDONTWRITEBYTECODE set would have each do it).
	$(BIN)/python -m compileall -q oms_engine plugins examples > /dev/null
	$(BIN)/python -m pytest -n 2

lint: $(DEV)
	$(BIN)/ruff check .

## make bench: set up and run the throughput benchmark (figures explained in docs/performance.md)
bench: $(STAMP)
	$(BIN)/oms bench

bench-rules: $(DEV)
	$(BIN)/python -m tests.rules.bench_rules

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache .hypothesis

## make screenshots: the console's pages at desktop and phone width, for docs/console.md (needs Chromium)
screenshots: $(DEV)
	$(BIN)/python -m tests.console.screenshots
