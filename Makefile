# The two commands a newcomer needs: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTEST_ARGS ?=

.PHONY: run test test-fast lint typecheck unit reliability bench schemas audit install tools clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: $(UV)
	$(UV) sync --frozen --all-extras

tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || echo "promtool unavailable: the rule tests will be skipped"; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || [ -n "$${GOVSYNC_TEST_DATABASE_URL:-}" ] || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
	  || echo "postgresql unavailable: the scores tests on PostgreSQL will fail"; }
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	  || echo "chromium unavailable: the scores page's browser test will be skipped"; }

## run: the whole pipeline on an embedded broker, with sample traffic (Ctrl-C stops it)
run: install
	$(UV) run govsync run

## test: lint, type-check and the whole test suite (fault tests included) against a real broker
test: install tools lint typecheck
	$(UV) run pytest $(PYTEST_ARGS)

## test-fast: the suite without the slow fault tests, for the edit-test loop
test-fast: install
	$(UV) run pytest -m "not slow" $(PYTEST_ARGS)

## reliability: faults survived, hostile input refused, nothing lost, no one let in
reliability: install tools
	$(UV) run pytest -m reliability $(PYTEST_ARGS)

## audit: known vulnerabilities in the locked dependencies (exit 2: the service was unreachable)
audit: install
	$(UV) run python scripts/dependency_audit.py

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: install
	$(UV) run mypy

unit: install
	$(UV) run pytest tests/unit $(PYTEST_ARGS)

bench: install
	$(UV) run python -m bench

## schemas: re-export the JSON Schema files from the pydantic models
schemas: install
	$(UV) run python -m schemas.export

clean:
	rm -rf .venv .mypy_cache .pytest_cache .ruff_cache
