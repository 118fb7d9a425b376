# The two commands a new user runs: `make demo` and `make test`. Both build the virtualenv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
# checkov pins many libraries of its own, so it gets a virtualenv of its own; the version is pinned
# so that the baseline (lint/checkov-baseline.yaml) is judged by the same checks everywhere.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
LAYER_REQUIREMENTS := layers/cdpbridge/requirements
STAMP := $(VENV)/.installed

# python3.12 where the machine has it (the Lambda runtime), else the newest python3 available.
PYTHON_FOR_VENV ?= $(shell scripts/find-python.sh)

.PHONY: help venv demo test lint typecheck security audit lock unit integration e2e sam-checks build compile-build bench clean

help:
	@echo "make demo   run the main job end to end on the embedded local stack"
	@echo "make test   run lint, type checks, security checks, SAM checks and the whole test suite"
	@echo "make lock   re-lock the layer's dependencies (requirements.in -> requirements.txt, with hashes)"
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
	$(VENV)/bin/mypy layers/cdpbridge/cdpbridge local/cdpbridge_local functions lint

$(SAM): scripts/find-python.sh Makefile
	@test -x $(SAM_VENV)/bin/python || $(PYTHON_FOR_VENV) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli>=1.170'
	@touch $(SAM)

$(CHECKOV_STAMP): scripts/find-python.sh
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_FOR_VENV) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $(CHECKOV_STAMP)

# The template against the project's own rules (lint/rules) and checkov (justified findings in
# lint/checkov-baseline.yaml), the code against bandit, the layer's locked dependencies against
# pip-audit (skipped, saying so, where no vulnerability database is reachable): see docs/operations.md.
security: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/cfn-lint --append-rules lint/rules -- template.yaml
	$(PY) lint/checkov_gate.py --checkov $(CHECKOV_VENV)/bin/checkov template.yaml lint/checkov-baseline.yaml
	$(VENV)/bin/bandit -c pyproject.toml -r layers functions local --quiet
	$(PY) lint/audit_dependencies.py $(LAYER_REQUIREMENTS).txt

audit: $(STAMP)
	$(PY) lint/audit_dependencies.py $(LAYER_REQUIREMENTS).txt

# One command after any change to requirements.in; existing pins are kept (LOCK_FLAGS=--upgrade
# moves every dependency to its newest allowed version). The Lambda target is python3.12 on arm64: the
# dependencies have no platform markers, so a python3.12 resolution holds there, and the hashes
# cover every file of each pinned version (the arm64 wheels sam build installs included).
lock: $(STAMP)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else "make lock needs the python3.12 virtualenv (the Lambda runtime)")'
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet $(LOCK_FLAGS) --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LAYER_REQUIREMENTS).txt $(LAYER_REQUIREMENTS).in

# sam build needs python3.12 on PATH: the virtualenv's interpreter is put first.
sam-checks: $(SAM) $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) build --parallel
	$(MAKE) --no-print-directory compile-build

# The deployment artifact with its bytecode: Lambda's file system is read-only, so a .pyc missing
# from the zip is compiled again by every cold start. unchecked-hash: valid whatever the zip does to
# file times. The virtualenv's python3.12 writes the bytecode of the Lambda runtime's version.
build: $(SAM) $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) build --parallel
	$(MAKE) --no-print-directory compile-build

compile-build: $(STAMP)
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

test: lint typecheck security sam-checks
	$(VENV)/bin/pytest

bench: build
	$(PY) bench/run_all.py

clean:
	rm -rf .aws-sam .local-stack build *.egg-info
