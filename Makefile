# jobqueue — every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HASH   := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
# What `jobqueue up` imports (its API, recorder and embedded servers) and nothing else: no test tools, no
# browser, no operator. tests/unit/test_run_install_set.py checks this set covers every module it loads.
RUN_EXTRAS  := embedded,api,record
ALL_EXTRAS  := dev,embedded,api,operator,record,otel
STAMP      := $(VENV)/.installed-all-$(HASH)
RUN_STAMP  := $(VENV)/.installed-run-$(HASH)
LINT_DIRS := $(wildcard worker_image api operator tests bench)

.PHONY: run test lint unit integration bench clean deps run-deps bytecode control-plane images helm e2e-kind fuzz soak \
	test-redis-oldest

$(RUN_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(RUN_EXTRAS)]"
	@rm -f $(VENV)/.installed-run-* && touch $(RUN_STAMP)

# Everything (a superset of the run set, so it satisfies `make run` too).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(ALL_EXTRAS)]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP) $(RUN_STAMP)

## make deps: everything the tests, lint and benchmarks need (the dev extra, the servers, a browser)
deps: $(STAMP)
	@bash scripts/ensure-system-deps.sh
	@$(MAKE) --no-print-directory bytecode

## make bytecode: compile the project's own modules, as `pip install` does for an installed package. The
## editable install runs them from the source tree, and with PYTHONDONTWRITEBYTECODE set (as here and in
## the images) every process compiled them again at start: ~75 ms of CPU on `jobqueue worker`'s start that
## no installed jobqueue pays. Python reads the cache even then, and recompiles a file edited since.
bytecode:
	@$(PY) -m compileall -q worker_image api operator

## make run-deps: only what `jobqueue up` needs (the servers; no test tools, no browser)
run-deps: $(RUN_STAMP)
	@bash scripts/ensure-system-deps.sh --no-browser
	@$(MAKE) --no-print-directory bytecode

## make run: the whole system on an embedded Redis, with a demo producer (Ctrl-C stops it)
run: run-deps
	$(VENV)/bin/jobqueue up

## make test: lint, type-check and the whole test suite against real servers
test: deps lint
	$(PY) -m pytest

## make test-redis-oldest: the core tests (scripts, enqueue, fetch, ack, retry, workflows, asyncio) on the
## oldest redis-py jobqueue supports; `make test` runs everything on the newest (pyproject has no upper cap)
REDIS_OLDEST := 5.0.1
OLDEST_VENV  := .venv-redis-oldest
REDIS_CORE_TESTS := $(addprefix tests/integration/jobqueue/,test_scripts.py test_app_api.py test_worker.py \
	test_workflows.py test_dependencies.py test_retry_request.py test_task_producers.py \
	test_redis_max_connections.py test_noscript_order.py test_redis_password.py redis_ha/test_cluster.py \
	redis_ha/test_noscript_failover.py redis_ha/test_replica_wait.py)
test-redis-oldest: $(STAMP)
	PYTHON=$(PYTHON) bash scripts/redis-oldest-venv.sh $(VENV) $(OLDEST_VENV) $(REDIS_OLDEST)
	$(OLDEST_VENV)/bin/python -m pytest -p no:cacheprovider -q $(REDIS_CORE_TESTS)

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

## make soak: the whole system for SOAK_MINUTES (default 10) under load with poison payloads, SIGKILLed
## workers, a Redis crash (AOF, fsync always) and a PostgreSQL outage; prints one table and fails when a
## task was lost, ran twice beyond the lease rule or went unrecorded, or the API answered 500 (bench/soak.py).
## make test runs a 1.5-minute version (tests/integration/bench/test_soak.py).
SOAK_MINUTES ?= 10
soak: deps
	SOAK_MINUTES=$(SOAK_MINUTES) $(PY) -m bench.soak

## make bench: jobqueue side by side with peer queues on one Redis (see docs/benchmarks.md)
# Peer queues go into their own venv (bench/.venv-peers, created by the harness), never into $(VENV).
# Options pass through, e.g. make bench BENCH_ARGS="--systems jobqueue,huey --tasks 2000"
#                          SUITE_ARGS="--sections depth --depths 1000,100000"
# Each step prints its progress, writes its tables and saves its headline figures (bench/results/summary/);
# BENCH_STEP notes how long it took. The last step composes the summary and the step times into
# docs/benchmarks.md ("Summary", "How to run").
BENCH_STEP := $(PY) -m bench.steptime --
bench: deps
	$(BENCH_STEP) $(PY) -m bench $(BENCH_ARGS)
	$(BENCH_STEP) $(PY) -m bench.jobqueue_suite $(SUITE_ARGS)
	$(BENCH_STEP) $(PY) -m bench.flow_cost
	$(BENCH_STEP) $(PY) -m bench.recorder_overhead
	$(BENCH_STEP) $(PY) -m bench.replica_wait
	$(BENCH_STEP) $(PY) -m bench.replica_wait --cluster
	$(BENCH_STEP) $(PY) -m bench.concurrent_enqueue
	$(BENCH_STEP) $(PY) -m bench.queue_scale --old
	$(BENCH_STEP) $(PY) -m bench.scale_costs
	$(BENCH_STEP) $(PY) -m bench.cluster_scale
	$(BENCH_STEP) $(PY) -m bench.io_bound
	$(BENCH_STEP) $(PY) -m bench.latency_load
	$(BENCH_STEP) $(PY) -m bench.cold_start --systems jobqueue,huey,dramatiq,celery --extra 'thread=--pool thread --concurrency 4' --rounds 5
	$(BENCH_STEP) $(PY) -m bench.cpu_bound --systems jobqueue,huey,dramatiq,celery --tasks 2000 --rounds 3
	$(PY) -m bench.summary

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
	rm -rf $(VENV) $(OLDEST_VENV) .jobqueue .pytest_cache .mypy_cache .ruff_cache
