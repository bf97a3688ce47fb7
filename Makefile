# Every target bootstraps what it needs: a pinned uv in .tools/, then .venv from the committed uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/uv-$(UV_VERSION)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --no-sync
# bubblewrap for the built-in tools' sandbox, fetched from the distribution's packages (no system install);
# when it could be fetched, the sandbox tests require it rather than skip
BWRAP := $(TOOLS)/bwrap/usr/bin/bwrap
export LOOPHOST_BWRAP ?= $(abspath $(BWRAP))

.PHONY: all venv test lint typecheck pytest bench demo serve clean chromium console-screenshot postgres

all: test

$(UV):
	$(PYTHON) -m venv $(TOOLS)/uv-$(UV_VERSION)
	$(TOOLS)/uv-$(UV_VERSION)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen
	@touch $@

venv: .venv/.synced

lint: venv
	$(RUN) ruff check src tests bench examples
	$(RUN) ruff format --check src tests bench examples

typecheck: venv
	$(RUN) mypy

$(BWRAP):
	sh scripts/fetch-bwrap.sh

# Chromium for the web console's browser tests, from the distribution's packages (Playwright cannot download one)
chromium:
	sh scripts/install-chromium.sh

# the PostgreSQL server binaries the PostgreSQL tests and benchmarks start a throwaway server from (the
# distribution's `postgresql` package, installed when missing; see scripts/install-postgres.sh)
postgres:
	sh scripts/install-postgres.sh

pytest: venv $(BWRAP) chromium postgres
	LOOPHOST_REQUIRE_BWRAP=$$(test -x $(BWRAP) && echo 1) $(RUN) pytest -q --durations=25 $(PYTEST_ARGS)

test: lint typecheck pytest

# docs/console.png, the screenshot of a session in the web console shown in the README
console-screenshot: venv chromium
	LOOPHOST_CONSOLE_SCREENSHOT=docs/console.png $(RUN) pytest -q tests/server/console/test_browser.py -k screenshot

bench: venv $(BWRAP) postgres
	$(RUN) python -m bench $(BENCH_ARGS)

demo: venv
	$(RUN) loophost demo

serve: venv $(BWRAP)
	$(RUN) loophost serve $(SERVE_ARGS)

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
