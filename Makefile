# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint unit bench screenshot clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/shepherd demo

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/run-tests

test: lint unit

bench: setup
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/dashboard_fleet.py
	$(BIN)/python bench/dashboard_live.py

# The README's pictures of the dashboard, taken on a live demo fleet (needs /usr/bin/chromium).
screenshot: setup
	$(BIN)/python scripts/screenshot-dashboard

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
