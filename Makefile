# pacsnode — two commands for a newcomer:
#   make serve   create the venv, install pacsnode, run it (SQLite + files in ./pacsnode-data)
#   make test    install the test tools (DCMTK from Debian, Python test deps) and run the suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
# Test processes (pytest-xdist, one test file per process at a time, one process per CPU;
# TEST_JOBS=0 runs the suite in this process, one test after another, in about twice the
# time on two CPUs).
TEST_JOBS ?= auto
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve install test test-deps lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/pacsnode serve $(ARGS)

# DCMTK's command-line tools are what the integration tests drive pacsnode with; Orthanc is
# the peer PACS of the query/retrieve tests; Chromium (headless) runs the web UI tests.
test-deps: install
	@if ! /usr/bin/storescu --version 2>/dev/null | grep -qi dcmtk; then \
	  echo "installing DCMTK from Debian's packages"; \
	  $(SUDO) apt-get install -y -q dcmtk >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dcmtk; }; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Chromium from Debian's packages (the web UI tests drive it)"; \
	  $(SUDO) apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q && \
	    $(SUDO) apt-get install -y -q --no-install-recommends chromium; }; \
	fi
	@if [ ! -x /usr/sbin/Orthanc ]; then \
	  echo "installing Orthanc from Debian's packages"; \
	  $(SUDO) apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb \
	    >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	    $(SUDO) apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb; }; \
	fi

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit

test: test-deps lint typecheck
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

bench: test-deps
	$(BIN)/python bench/ingest.py $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
