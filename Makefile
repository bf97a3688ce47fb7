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

.PHONY: all venv test lint typecheck pytest bench demo serve clean

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

pytest: venv $(BWRAP)
	LOOPHOST_REQUIRE_BWRAP=$$(test -x $(BWRAP) && echo 1) $(RUN) pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: venv
	$(RUN) python -m bench $(BENCH_ARGS)

demo: venv
	$(RUN) loophost demo

serve: venv $(BWRAP)
	$(RUN) loophost serve $(SERVE_ARGS)

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
