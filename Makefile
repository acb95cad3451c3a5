# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[demo,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mattekit models fetch
	$(VENV)/bin/mattekit demo --output-dir demo-output

test: $(STAMP)
	$(VENV)/bin/mattekit models fetch --quiet
	$(PY) -m pytest -q

clean:
	rm -rf demo-output .pytest_cache
