# Ferry — the two quick-start commands are `make up` and `make test`; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.ferry-runtime
DEV := $(VENV)/.ferry-dev

# AWS SAM CLI in a venv of its own: it pins its own aws-sam-translator and cfn-lint.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_READY := $(SAM_VENV)/.aws-sam-cli-$(SAM_CLI_VERSION)

.PHONY: up demo test test-fast lint format typecheck bench image sam-build clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ferry needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@ $(RUNTIME)

## up: start the local stack (moto, API on 127.0.0.1:8080, sample app, local agent); Ctrl-C stops
up: $(RUNTIME)
	$(BIN)/ferry up $(ARGS)

## demo: the same flow once, non-interactively; prints a summary, exits 0 when the sample is synced
demo: $(RUNTIME)
	$(BIN)/ferry demo $(ARGS)

## test: the whole suite (unit, integration against moto, e2e with Docker)
test: $(DEV)
	$(BIN)/pytest $(PYTEST_ARGS)

## test-fast: unit and integration tiers only (no Docker needed)
test-fast: $(DEV)
	$(BIN)/pytest tests/unit tests/integration $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(DEV)
	$(BIN)/mypy

format: $(DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: benchmarks under bench/, reported as ratios against a baseline in the same run
bench: $(DEV)
	$(BIN)/python -m bench

## image: the local busybox image for hosts that reach no registry (needs a Docker daemon)
image: $(RUNTIME)
	$(BIN)/ferry-agent build-local-image

$(SAM_READY):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

## sam-build: `sam validate --lint` and `sam build` (the layer for arm64; needs python3.11 on PATH)
sam-build: $(SAM_READY)
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint
	SAM_CLI_TELEMETRY=0 $(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .ferry .pytest_cache .ruff_cache .mypy_cache
