# The two commands of the README: `make demo` and `make test`.
#
# Both build a local virtual environment (.venv) holding exactly the locked set of uv.lock
# (`uv sync --locked`: it fails if the lock and pyproject.toml disagree) and rebuild it when
# either file changes. uv itself is installed at a pinned version into .venv-tools by the
# machine's own Python; nothing is installed outside this folder.
#
# `make upgrade` refreshes the lock to the newest releases the bounds allow, then runs the suite.
PYTHON     ?= python3
UV_VERSION := 0.13.9
TOOLS      := .venv-tools
UV         := $(TOOLS)/bin/uv
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

# Never let uv download an interpreter or pick one outside this machine's Python.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_NO_CONFIG := 1

.PHONY: test docs demo lint typecheck typecheck-lowest pytest bench upgrade lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --quiet --extra dev
	rm -f $(BENCH_STAMP)
	touch $(STAMP)

## The whole test suite: lint, strict typing (newest and oldest supported releases), the docs
## build, then pytest
## (slow chaos tests included).
test: lint typecheck typecheck-lowest docs pytest

## The documentation site, built with warnings as errors into site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir site

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

# The package type-checked against the lower bounds of its runtime dependencies.
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed

$(LOWEST_STAMP): requirements/lowest.txt | $(UV)
	$(UV) venv --quiet --allow-existing $(LOWEST)
	$(UV) pip sync --quiet --python $(LOWEST)/bin/python requirements/lowest.txt
	touch $(LOWEST_STAMP)

typecheck-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m mypy --cache-dir .mypy_cache/lowest

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## The library's main job against the embedded fake server: no GPU, no network.
demo: $(STAMP)
	$(VENV)/bin/comfy-async demo

## Every benchmark, side by side: benchmarks/README.md, results/chart.png, results/*.json.
$(BENCH_STAMP): $(STAMP)
	$(UV) sync --locked --quiet --extra dev --extra bench
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

## Re-resolve the locks after editing pyproject.toml, keeping every other pin.
LOWEST_COMPILE = $(UV) pip compile --quiet --generate-hashes --resolution lowest-direct \
	--extra cli --extra testing --no-header -o requirements/lowest.txt \
	pyproject.toml requirements/lowest.in

lock: | $(UV)
	$(UV) lock
	$(LOWEST_COMPILE)

## Refresh the lock to the newest releases, then run the whole suite against them.
upgrade: | $(UV)
	$(UV) lock --upgrade
	$(LOWEST_COMPILE) --upgrade
	$(MAKE) test

clean:
	rm -rf $(VENV) $(LOWEST) $(TOOLS) build dist site .mypy_cache .ruff_cache .pytest_cache .hypothesis
