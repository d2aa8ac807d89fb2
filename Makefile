# EzSpark developer entry points.  `make demo` and `make test` work on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := -e 'libs/ezspark_common[box2d,broker,render]' -e services/evaluator -e services/evolver -e services/gateway
PYPROJECTS := libs/ezspark_common/pyproject.toml services/evaluator/pyproject.toml \
              services/evolver/pyproject.toml services/gateway/pyproject.toml

.PHONY: install test-deps lint test test-unit test-integration test-deploy test-e2e test-faults demo bench bench-full bench-learn bench-gateway up down clean images

install: $(STAMP)

$(STAMP): $(PYPROJECTS) requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PKGS) -r requirements-dev.txt
	touch $(STAMP)

# Tools the test suite needs beyond the packages: offline manifest validators (apt/PyPI),
# headless Chromium for the browser tests.  Idempotent and quick when already present.
test-deps: install
	bash deploy/ci-install.sh
	$(BIN)/pip install -q -r requirements-deploy.txt -r requirements-faults.txt
	bash scripts/ci-browser-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict libs/ezspark_common/src services/evaluator/src services/evolver/src \
	    services/gateway/src benchmarks

# Most tests wait on processes, RabbitMQ and Chromium rather than compute: they run in
# TEST_JOBS processes, a test file per process (its module fixtures built once).  Tests
# marked `serial` (they stop RabbitMQ, or compare timings) run afterwards, alone.
TEST_JOBS ?= 3
test: test-deps
	$(BIN)/python -m pytest tests -q -n $(TEST_JOBS) --dist loadfile -m "not serial"
	$(BIN)/python -m pytest tests -q -m serial

test-unit: install
	$(BIN)/python -m pytest tests/unit -q

test-integration: install
	$(BIN)/python -m pytest tests/integration -q

# The compose file and the Kubernetes manifests, validated offline.
test-deploy: test-deps
	$(BIN)/python -m pytest tests/deploy -q

test-e2e: install
	$(BIN)/python -m pytest tests/e2e -q

# Fault, abuse and load tests (also part of `make test`): they restart RabbitMQ.
test-faults: test-deps
	$(BIN)/python -m pytest tests/integration/faults -m faults -q

demo: install
	$(BIN)/ezspark train examples/cartpole.json --out runs/demo
	$(BIN)/ezspark play runs/demo/best.json --episodes 3

bench: install
	$(BIN)/pip install -q -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks.run

bench-full: install
	$(BIN)/pip install -q -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks.run --lander
	$(BIN)/python -m benchmarks.bench_learn --jobs 2

# Gateway reads against a bare FastAPI app, same multi-process load client, same run
# (also part of `make bench`); BENCH_GATEWAY_ARGS="--database-url postgresql://..." etc.
bench-gateway: install
	$(BIN)/python -m benchmarks.bench_gateway $(BENCH_GATEWAY_ARGS)

# Does evolution learn?  EzSpark beside neat-python on six tasks, 10 seeds each (long: see
# docs/benchmarks.md); BENCH_LEARN_ARGS="--tasks xor parity3 --seeds 3" for a subset.
bench-learn: install
	$(BIN)/pip install -q -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks.bench_learn --jobs 2 $(BENCH_LEARN_ARGS)

# The whole stack as local processes (gateway :8000, evolver, 2 evaluators) for machines
# without Docker; RabbitMQ must be reachable at EZSPARK_BROKER_URL (default: localhost).
up: install
	scripts/stack.sh up

down:
	scripts/stack.sh down

# The three container images, ezspark/<service>:$(IMAGE_TAG), from the one Dockerfile
# (docker or any CLI that takes the same flags: DOCKER=podman, DOCKER="nerdctl").  CI
# without a builder skips this; push with e.g. IMAGE_TAG=0.1.0 and your registry's tag.
IMAGE_TAG ?= dev
DOCKER    ?= docker
images:
	for s in gateway evolver evaluator; do \
	  $(DOCKER) build --target $$s -t ezspark/$$s:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
