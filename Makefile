# Everything a developer or CI runs. The virtualenv is made here, from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv run test lint pytest format clean bench docs client

PLUGIN := examples/plugin-wechat-miniprogram
CLIENT := clients/python
GENERATED := $(CLIENT)/src/auth_gateway_client/generated

# The example plug-in is installed too: make test runs its tests and a login through it, and the
# docs' kind pages include it (docs/plugins.md is its walk-through).
$(STAMP): pyproject.toml $(PLUGIN)/pyproject.toml $(CLIENT)/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,fast,otel,docs]'
	$(BIN)/python -m pip install --quiet -e '$(PLUGIN)' -e '$(CLIENT)'
	@touch $(STAMP)

venv: $(STAMP)

## make run: the embedded default — vendor sandbox in-process, memory store, a dev key and a curl to try
run: venv
	$(BIN)/python -m gateway serve --dev

## make test: static checks, then the whole suite against a real Redis (the docs site is built with
## `mkdocs build --strict`, and the generated pages checked current, by tests/docs/)
test: lint pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the gateway beside bare baselines (hello, Redis GET, POST + SET) in one run — L1 and
## Redis hits, misses, --workers 2, cold burst, RSS soak, py-spy profiles (~9 min) — and writes the
## results into docs/performance.md. Options: make bench BENCH_ARGS="--quick" (or --soak-minutes 10,
## --label NAME --journal, --help). Uses wrk when installed (Debian package wrk), else a bundled one.
BENCH_ARGS ?=
bench: venv
	$(BIN)/python -m pip install --quiet -e '.[test,fast,otel,docs,bench]'
	$(BIN)/python -m tests.benchmarks.bench $(BENCH_ARGS)

## make docs: regenerate the reference pages from the code (tools/gendocs), then build the site in site/
docs: venv
	$(BIN)/python -m tools.gendocs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## make client: docs/reference/openapi.json from the code, then the typed client in clients/python/
## from that document (openapi-python-client; a test checks the committed client is current)
client: venv
	$(BIN)/python -m tools.gendocs
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate --overwrite --meta none \
		--path docs/reference/openapi.json --config $(CLIENT)/generator.yaml --output-path $(GENERATED)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
