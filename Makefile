# The README's commands. Each one installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
PY := .venv/bin/python
export API_PORT ?= 3000
export DYNAMODB_PORT ?= 8000
export STRIPE_PORT ?= 8420

.PHONY: setup test demo up down bench lint sam-validate sam-build clean openapi

setup:
	@scripts/setup.sh

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: setup
	$(PY) -m devstack.demo $(DEMO_ARGS)

up: setup
	$(PY) -m devstack.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack.stack down; else echo "nothing to stop"; fi

bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

lint: setup
	.venv/bin/cfn-lint template.yaml

# AWS SAM CLI lives in its own venv (it pins its own dependencies); needs Python 3.12 for the runtime.
sam-validate: setup
	@scripts/sam.sh validate --lint

sam-build: setup
	@scripts/sam.sh build

clean: down
	rm -rf .venv node_modules .aws-sam .local

# The OpenAPI document the docs function serves (tests/architecture checks it is current).
openapi: setup
	$(PY) -c "from devstack.openapi import write; write('functions/docs/apidocs/openapi.json')"
