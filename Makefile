# Every target installs what it needs: `make up` and `make test` work on a fresh machine.
SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "creating $(VENV): installing the pinned dependencies of pyproject.toml (a minute or two, once)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip==25.2
	$(VENV)/bin/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies

build: $(STAMP) ## build the reproducible Lambda package (build/lambda/payment-app.zip)
	$(PY) -m devkit.build

up: $(STAMP) ## run the platform locally: emulator + terraform apply + demo payments + report + links
	$(VENV)/bin/devkit up

down: $(STAMP) ## destroy the local platform and stop the emulator
	$(VENV)/bin/devkit down

fmt: ## format HCL and Python
	terraform fmt -recursive
	$(VENV)/bin/ruff format .

lint: $(STAMP) ## terraform fmt/validate, ruff, mypy
	terraform fmt -check -recursive
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m devkit.terraform validate

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)

security: checkov policy-audit ## security scan: checkov + parliament audit of every policy in the plan

checkov: $(CHECKOV_VENV)/bin/checkov ## checkov over the root module and every module
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

policy-audit: $(STAMP) ## parliament over every IAM, key, bucket, topic and queue policy of the plan
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/security/test_policy_audit.py

# The tests without apply/e2e run on pytest-xdist workers, a test file per worker at a time
# (loadfile: module-scoped fixtures such as the variable-validation plans or the clean-install venv
# are made once). Plans are shared across workers and sessions (tests/support/plans.py).
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

unit: $(STAMP) ## unit, property and CLI tests (moto in-process)
	$(VENV)/bin/pytest -q $(XDIST) -m "not plan and not apply and not e2e"

# The edit-test loop the README names: lint, types and the unit, plan and security tests; the ops,
# harness and tooling suites (a moto account or a subprocess per test) are `make unit`'s and `make test`'s.
CHECK_TESTS := tests/unit tests/plan tests/security
check: lint build ## the edit-test loop (<= 5 min): lint, types, build, unit/plan/security tests without slow
	$(VENV)/bin/pytest -q $(XDIST) -m "not e2e and not apply and not slow" $(CHECK_TESTS)

mutants: $(STAMP) ## planted bugs (tests/mutants/*.patch): each must fail the tests it names; ONLY=<prefix> to pick
	$(PY) tools/mutants.py $(if $(ONLY),--only $(ONLY))

mutation: $(STAMP) ## mutmut score of TARGET=settlement|fencing|jobs against its tests (bench/results/mutation.md)
	$(PY) tools/mutation.py $(or $(TARGET),settlement)

# The apply + e2e selection on two pytest-xdist workers, a deployment of its own on each: the flows
# that build on each other run in order on one worker ("chain"), the longest independent files on the
# other ("apart": tests/conftest.py picks them per backend). On moto each worker runs an embedded
# server of its own; on LocalStack both share one, started once for both (`localstack run`), so
# neither worker stops it under the other.
E2E_XDIST := -n 2 --dist loadgroup --no-loadscope-reorder

# The two pytest phases run side by side: the first (everything but apply/e2e) keeps both cores busy,
# while the apply + e2e phase mostly waits on Terraform's waiters and the emulator's flows (0.8 of a
# core), so together they take ~15 minutes instead of ~20 one after the other (bench/results/ci-lanes.md).
# They are separate pytest processes: the in-process moto accounts of the first never meet the
# embedded servers of the second. The apply + e2e output is shown when both have ended.
# CI_E2E_MARKER (set by .ci/run): a file touched once the apply + e2e phase has passed, the signal
# for the LocalStack lane to start.
E2E_LOG := build/test/apply-e2e.log
test: lint security build ## THE test command: lint, security scan, unit, plan, apply and end-to-end tests
	@mkdir -p $(dir $(E2E_LOG))
	@echo "apply + e2e on two workers beside the first phase (its output: $(E2E_LOG))"
	( $(VENV)/bin/pytest -q --durations=12 $(E2E_XDIST) -m "apply or e2e" >$(E2E_LOG) 2>&1 \
	  $(if $(CI_E2E_MARKER),&& touch $(CI_E2E_MARKER)) ) & e2e=$$!; \
	first=0; $(VENV)/bin/pytest -q --durations=10 $(XDIST) -m "not e2e and not apply" || first=$$?; \
	second=0; wait $$e2e || second=$$?; \
	echo "----- apply + e2e (pytest $(E2E_XDIST) -m \"apply or e2e\") -----"; cat $(E2E_LOG); \
	echo "first phase: exit $$first; apply + e2e: exit $$second"; \
	[ $$first -eq 0 ] && [ $$second -eq 0 ]

localstack-install: $(STAMP) ## install LocalStack without Docker (its venv, DynamoDB Local); no-op when current
	$(PY) -m devkit.emulator.localstack install

test-localstack: $(STAMP) build ## apply, re-plan, e2e and destroy on LocalStack (Docker on :4566, else installed and run on the host)
	E2E_BACKEND=localstack $(PY) -m devkit.emulator.localstack run -- \
	  $(VENV)/bin/pytest -q --durations=12 $(E2E_XDIST) -m "apply or e2e"

bench: build ## benchmarks; figures land in bench/results/*.md
	$(PY) -m bench.deploy
	$(PY) -m bench.handlers
	$(PY) -m bench.ops_bench

SOAK_CYCLES ?= 10
soak: build ## reliability soak: SOAK_CYCLES devkit up/down cycles on fresh state -> bench/results/soak.md
	$(PY) -m bench.soak cycles -n $(SOAK_CYCLES)

clean: ## remove build outputs and local state (run `make down` first)
	rm -rf build .local .pytest_cache .mypy_cache .ruff_cache

.PHONY: help venv build up down fmt lint security checkov policy-audit unit check mutants mutation test localstack-install test-localstack bench soak clean
