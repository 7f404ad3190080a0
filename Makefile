# jobqueue — every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
LINT_DIRS := $(wildcard worker_image api operator tests bench)

.PHONY: run test lint unit integration bench clean deps control-plane images helm e2e-kind fuzz

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,embedded,api,operator,record]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

deps: $(STAMP)
	@bash scripts/ensure-system-deps.sh

## make run: the whole system on an embedded Redis, with a demo producer (Ctrl-C stops it)
run: deps
	$(VENV)/bin/jobqueue up

## make test: lint, type-check and the whole test suite against real servers
test: deps lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check worker_image
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

unit: $(STAMP)
	$(PY) -m pytest tests/unit

## make fuzz: the generated-payload tests and the state machine over the Lua transitions with a long budget
## (hypothesis profile "fuzz", random seeds) and the API schema fuzzer with more examples; make test runs the
## same tests with a small fixed budget.
fuzz: deps
	JOBQUEUE_HYPOTHESIS_PROFILE=fuzz JOBQUEUE_FUZZ_EXAMPLES=200 JOBQUEUE_FUZZ_RANDOM=1 $(PY) -m pytest \
		--timeout=3600 tests/unit/jobqueue/test_payloads.py tests/integration/jobqueue_api/test_payload_fuzz.py \
		tests/integration/jobqueue_api/test_fuzz.py tests/integration/jobqueue/test_transition_model.py

## make bench: jobqueue side by side with peer queues on one Redis (see docs/benchmarks.md)
# Peer queues go into their own venv (bench/.venv-peers, created by the harness), never into $(VENV).
# Options pass through, e.g. make bench BENCH_ARGS="--systems jobqueue,huey --tasks 2000"
#                          SUITE_ARGS="--sections depth --depths 1000,100000"
# Each step prints its progress; the defaults took ~35 minutes on 2 busy cores (docs/benchmarks.md).
bench: deps
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.jobqueue_suite $(SUITE_ARGS)
	$(PY) -m bench.flow_cost
	$(PY) -m bench.recorder_overhead

## make control-plane: build the Kubernetes test control plane (etcd, kube-*, kwok) from Go modules,
## into ~/.cache/jobqueue-k8s; operator tests skip loudly without it (and fail under CI=true)
control-plane:
	bash tests/k8s/build-control-plane.sh

## make images: jobqueue-worker:<appVersion> and jobqueue-operator:<appVersion> (the chart's defaults) on a
## debootstrapped Debian base (no registry needed; see tests/images)
images:
	bash tests/images/ensure-docker.sh
	bash tests/images/build-base-image.sh

## make helm: the helm binary built from Go modules into ~/.cache/jobqueue-helm (chart tests need it)
helm:
	bash tests/helm/build-helm.sh

## make e2e-kind: README's "On Kubernetes" commands on a kind cluster, then helm test (needs a registry: not
## on the build machine)
e2e-kind:
	bash tests/e2e/kind/run.sh

clean:
	rm -rf $(VENV) .jobqueue .pytest_cache .mypy_cache .ruff_cache
