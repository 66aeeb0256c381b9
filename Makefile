# Fitnest: one entry point for the demo, the tests and the worker.
# Needs only python3 (>= 3.11) and GNU make; everything else goes into $(VENV).

PYTHON ?= python3
VENV = .venv
BIN = $(VENV)/bin
# Written after a successful install; pyproject.toml newer than it means reinstall.
STAMP = $(VENV)/.fitnest-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
PACKAGES = negotiation workflows activities workers starters ui
PYTHON_CHECK = import sys; v = sys.version_info[:2]; sys.exit(0 if v >= (3, 11) else \
  "error: Fitnest needs Python >= 3.11 but $(PYTHON) is %d.%d; run make PYTHON=python3.11" % v)

.DEFAULT_GOAL := help
.PHONY: help install up test worker lint bench clean chromium postgresql

help:
	@echo "make up      run the Temporal dev server, a worker and a demo negotiation (Ctrl-C stops all)"
	@echo "make test    run the tests (PYTEST_ARGS='-k name' to pick)"
	@echo "make worker  run a worker against FITNEST_TEMPORAL_ADDRESS / FITNEST_NAMESPACE / FITNEST_TASK_QUEUE"
	@echo "make lint    ruff and mypy"
	@echo "make bench   run the benchmark (python -m bench)"
	@echo "make clean   remove $(VENV), .data and .outbox"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: '$(PYTHON)' not found; install Python >= 3.11 or run make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; }
	@$(PYTHON) -c '$(PYTHON_CHECK)'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

up: $(STAMP)
	$(BIN)/python -m workers.up

test: $(STAMP) chromium postgresql
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's chromium (never a browser downloaded by Playwright).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "error: the browser tests need chromium: run 'sudo apt-get install -y chromium' (Debian/Ubuntu)" >&2; \
	    exit 1; \
	  fi; }

# The ledger and fleet tests start Debian's PostgreSQL server themselves (as a non-root user, on a
# free port, data in a temporary folder); only the package is needed.
postgresql:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else \
	    echo "error: the ledger tests need PostgreSQL: run 'sudo apt-get install -y postgresql' (Debian/Ubuntu)" >&2; \
	    exit 1; \
	  fi; }

# The cluster comes from the environment (the worker logs what it connected to), e.g.
#   FITNEST_TEMPORAL_ADDRESS=temporal.internal:7233 FITNEST_NAMESPACE=fitnest make worker
worker: $(STAMP)
	$(BIN)/python -m workers.worker

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy $(PACKAGES)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .outbox
