# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_STAMP := $(VENV)/.installed-lint

.PHONY: demo test test-fast lint bench clean chromium

# what the tests need: the test extra pulls in every other extra (pyproject.toml)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The lint extra (ruff, mypy pinned in pyproject.toml) on top of the project's own install: mypy
# reads the installed packages' types.
$(LINT_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[lint]'
	touch $(LINT_STAMP)

# Style and types (config in pyproject.toml). Checks only, all three even when one fails;
# `ruff format` rewrites nothing here.
lint: $(LINT_STAMP)
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/ruff format --check . || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status


# what the demo needs: the core install and the demo extra
$(VENV)/.installed-demo: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $@

demo: $(VENV)/.installed-demo
	$(VENV)/bin/mattekit models fetch
	$(VENV)/bin/mattekit demo --output-dir demo-output --overwrite

test: $(STAMP) chromium
	$(VENV)/bin/mattekit models fetch --quiet
	$(PY) -m pytest -q

# The quick loop while editing (under a minute on 2 cores): no slow, browser or network tests.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser and not network"

# Headless Chromium for the browser test (tests/test_server_e2e.py, skipped without it):
# installed from Debian's packages when missing and apt-get is available; never fails the build.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    || echo "make chromium: could not install chromium and chromium-driver; the browser test will be skipped"; \
	else echo "make chromium: no apt-get; install Chromium and chromedriver to run the browser test"; fi

# Speed and memory table of issue 4 (720p, 1080p, 4K; ~10-15 min on 2 cores); needs ../shared/data.
bench: $(STAMP)
	$(VENV)/bin/mattekit models fetch --quiet
	$(PY) benchmarks/bench_video.py

clean:
	rm -rf demo-output .pytest_cache
