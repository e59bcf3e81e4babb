# Every target sets up what it needs on a fresh machine: a virtualenv with the project and
# its dev dependencies, and (for tests) the PostgreSQL server binaries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Most tests wait on relay processes, receivers and PostgreSQL, so more workers than cores pay.
# On 2 cores, with the crash loop among them, 3 did best (pytest 286 s; 2: 334 s; 4: 302 s).
# Without the `alone` scenarios, 4 took 295 s against 321 s for 3 in one pair of runs
# (2026-12-04), and stretched the fault scenarios further (a corrupt spool 59 s against 35 s);
# 3 is what CI has passed with.
TEST_WORKERS ?= 3

.PHONY: install run test lint bench faults soak postgres-binaries chromium screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: serve the relay on the embedded default (SQLite database and spool under ./var/)
run: $(STAMP)
	$(BIN)/relay serve

## test: lint, type-check, then the whole suite against a throwaway PostgreSQL cluster
## (one per worker), spread over TEST_WORKERS pytest-xdist workers, the longest modules first;
## then the scenarios marked `alone` (they need the machine to themselves), on one worker.
## Both parts always run; the target fails if either did.
test: $(STAMP) postgres-binaries chromium lint
	$(BIN)/python -m pytest -m "not alone" -n $(TEST_WORKERS) --dist loadscope \
		--no-loadscope-reorder --durations=15; parallel=$$?; \
	$(BIN)/python -m pytest -m alone --durations=5; alone=$$?; \
	test $$parallel -eq 0 -a $$alone -eq 0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## faults: only the fault-injection scenarios, one line of figures per scenario at the end
faults: $(STAMP) postgres-binaries
	$(BIN)/python -m pytest tests/faults -q

## soak: the fault scenarios at full length (a minute-long outage, more crashes)
soak: $(STAMP) postgres-binaries
	FAULTS_OUTAGE_SECONDS=60 FAULTS_KILLS=100 FAULTS_THREE_RELAY_KILLS=30 \
		$(BIN)/python -m pytest tests/faults -q

## bench: side-by-side benchmarks; results in bench/results.md
bench: $(STAMP) postgres-binaries
	$(BIN)/python -m bench.run

# The tests start their own PostgreSQL cluster with initdb/pg_ctl; install them if missing.
postgres-binaries:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL server binaries"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

## screenshots: the console's pages as PNGs in docs/screenshots, taken by its browser test
screenshots: $(STAMP) postgres-binaries chromium
	RELAY_CONSOLE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/relay/test_console.py -q -k "admin_finds or phone_an_admin or builds_a_filter"

# The console's browser tests drive Debian's chromium (Playwright's own downloads are blocked).
chromium:
	@test -x /usr/bin/chromium || { \
		echo "installing chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache bench/out
