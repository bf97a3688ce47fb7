# Every target bootstraps what it needs: a pinned uv in .tools/, then .venv from the committed uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/uv-$(UV_VERSION)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --no-sync

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
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench

typecheck: venv
	$(RUN) mypy

pytest: venv
	$(RUN) pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: venv
	$(RUN) python -m bench $(BENCH_ARGS)

demo: venv
	$(RUN) loophost demo

serve: venv
	$(RUN) loophost serve $(SERVE_ARGS)

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
