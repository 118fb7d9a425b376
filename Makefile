# The two commands a new user runs: `make demo` and `make test`. Both build the virtualenv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
STAMP := $(VENV)/.installed

# python3.12 where the machine has it (the Lambda runtime), else the newest python3 available.
PYTHON_FOR_VENV ?= $(shell scripts/find-python.sh)

.PHONY: help venv demo test lint typecheck unit integration e2e sam-checks bench clean

help:
	@echo "make demo   run the main job end to end on the embedded local stack"
	@echo "make test   run lint, type checks, SAM checks and the whole test suite"
	@echo "make bench  run the benchmarks and write bench/results/latest.json"

$(STAMP): pyproject.toml layers/cdpbridge/requirements.txt
	@test -x $(PY) || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cdpbridge demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy layers/cdpbridge/cdpbridge local/cdpbridge_local functions

$(SAM): scripts/find-python.sh Makefile
	@test -x $(SAM_VENV)/bin/python || $(PYTHON_FOR_VENV) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli>=1.170'
	@touch $(SAM)

# sam build needs python3.12 on PATH: the virtualenv's interpreter is put first.
sam-checks: $(SAM) $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) build --parallel

test: lint typecheck sam-checks
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf .aws-sam .local-stack build *.egg-info
