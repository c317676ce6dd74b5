# streamjob: every target creates .venv and installs what it needs, so a fresh clone works.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PARALLELISM ?= 2

.PHONY: run test lint typecheck importlint pytest bench install dev-install clean e2e-kind

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=strict
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Re-link the strict editable install after adding modules (strict mode links files, not folders).
dev-install: $(STAMP)
	flock /tmp/streamjob-install.lock $(BIN)/pip install -q --no-deps --no-build-isolation \
		-e . --config-settings editable_mode=strict

# The word count on the local mini-cluster: one JobManager and PARALLELISM TaskManager processes.
run: dev-install
	rm -rf $(CURDIR)/.run/checkpoints
	$(BIN)/streamjob run examples/wordcount.py --parallelism $(PARALLELISM) --mini-cluster \
		--checkpoint-dir $(CURDIR)/.run/checkpoints --checkpoint-interval 1

lint: dev-install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check worker operator tests bench examples

typecheck: dev-install
	$(BIN)/mypy

importlint: dev-install
	$(BIN)/lint-imports

pytest: dev-install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck importlint pytest

bench: dev-install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

# The container image (one for operator, JobManager and TaskManager), built without network from
# a local wheelhouse; BASE_IMAGE overrides the base (e.g. one made with debootstrap + docker import:
# scripts/docker-setup.sh builds streamjob-base:bookworm). The build runs with --network=none.
IMAGE ?= streamjob:0.1.0
BASE_IMAGE ?= python:3.11-slim
DOCKER_BUILD_FLAGS ?=

image: $(STAMP)
	rm -rf build/wheelhouse build/lib build/bdist.*
	$(BIN)/pip wheel -q --wheel-dir build/wheelhouse '.[operator]'
	docker build --network=none --build-arg BASE_IMAGE=$(BASE_IMAGE) $(DOCKER_BUILD_FLAGS) \
		-t $(IMAGE) .

# Kind end to end: image -> kind load -> chart + CRD -> SeaweedFS -> the tests marked `kind`.
# Skipped (exit 0) when no kind cluster is reachable: `kind create cluster` first.
e2e-kind: image
	IMAGE=$(IMAGE) BIN=$(BIN) scripts/e2e-kind.sh

.PHONY: image
