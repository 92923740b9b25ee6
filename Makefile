# Thin wrappers. Each target creates .venv and installs vclib when missing (plain python3 + pip).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.vclib-installed
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900

# Root (containers, Colab-like VMs) needs --allow-root for jupyter lab.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: install run test unit nbval lint lab notebooks check-colab test-browser student papers figures clean

# The full local set: runtime + [lab] + [dev]. torchattacks (a parity oracle in tests/test_adversarial.py) is
# installed with --no-deps so that its exact pins cannot downgrade numpy, scipy or torch.
$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e ".[lab,dev]"
	$(PYTHON) -m pip install --quiet --no-deps "torchattacks>=3.5"
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
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) notebooks/

notebooks: $(STAMP)  ## rebuild notebooks from notebooks/sources and store fresh quick-mode outputs
	$(PYTHON) -m vclib build
	$(PYTHON) -m vclib run --inplace

# JupyterLab in Chromium (tests/browser): needs the system chromium (apt-get install chromium) or VCLIB_CHROMIUM.
test-browser: $(STAMP)  ## open, Run All, widgets and controls of every notebook in a real JupyterLab
	$(PYTHON) -m pip install --quiet -e ".[browser]"
	VCLIB_BROWSER=1 $(PYTHON) -m pytest -p no:cacheprovider tests/browser

student: $(STAMP)  ## the exercise edition in build/student (solutions removed, outputs cleared, EXERCISES.md)
	rm -rf build/student
	$(PYTHON) -m vclib student build/student

papers: $(STAMP)  ## run the paper experiments, build paper_discussions/*.pdf (PDFs only: vclib papers --no-experiments)
	$(PYTHON) -m vclib papers

figures: $(STAMP)  ## draw every figure of assets/ from vclib code and write assets/manifest.json (about 3 minutes)
	$(PYTHON) -m vclib figures

check-colab:  ## dry-run the Colab install cell against colab/constraints-*.txt (skips when offline)
	python3 scripts/check_colab.py

clean:
	rm -rf build .pytest_cache
