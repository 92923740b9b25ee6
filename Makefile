# Thin wrappers. Each target creates .venv and installs vclib when missing (plain python3 + pip).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.vclib-installed
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900

.PHONY: install run test unit nbval lint lab notebooks clean

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## execute every notebook headless in quick mode; writes build/report.json
	$(PYTHON) -m vclib run

test: lint unit nbval  ## ruff, unit tests, nbval over every notebook

lint: $(STAMP)
	$(VENV)/bin/ruff check .

unit: $(STAMP)
	$(PYTHON) -m pytest tests

nbval: $(STAMP)
	VCLIB_PROGRESS=0 $(PYTHON) -m pytest $(NBVAL) notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

notebooks: $(STAMP)  ## rebuild notebooks from notebooks/sources and store fresh quick-mode outputs
	$(PYTHON) -m vclib build
	$(PYTHON) -m vclib run --inplace

clean:
	rm -rf build .pytest_cache
