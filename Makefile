# bids_taskenc developer entry points. Everything installs into ./.venv.
# The CPU build of torch is pinned for tests and the demo (a bare `torch`
# would pull a multi-GB CUDA build); containers install their own.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
DEMO_DIR ?= demo
# pytest-xdist workers for `make test` (tests/conftest.py gives each one thread per math library, so two
# workers use a 2-core machine's cores; `make test TEST_WORKERS=0` runs in one process)
TEST_WORKERS ?= 2

.PHONY: venv test docs format demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test,docs]" "$(TORCH_PIN)"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy bids_taskenc
	$(PY) -m pytest -q -n $(TEST_WORKERS) --doctest-modules tests bids_taskenc

# The docs site: warnings are errors (-W), the example gallery is executed, the options page is
# generated from the parser. Output: docs/_build/html/index.html.
docs: venv
	rm -rf docs/_build docs/auto_examples
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "Docs: docs/_build/html/index.html"

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: venv
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/bids_taskenc-synthetic $(DEMO_DIR)/bids --participants 2 --template MNI152NLin2009cAsym
	$(VENV)/bin/bids_taskenc $(DEMO_DIR)/bids $(DEMO_DIR)/bids/derivatives/bids_taskenc participant \
		--space MNI152NLin2009cAsym --features-dir $(DEMO_DIR)/bids/derivatives/features --work-dir $(DEMO_DIR)/work --seed 0 --offline \
		--feature-spaces $$($(PY) -m bids_taskenc.testing.demo $(DEMO_DIR)/bids/derivatives/features)
	$(VENV)/bin/bids_taskenc $(DEMO_DIR)/bids $(DEMO_DIR)/bids/derivatives/bids_taskenc group --offline
	@echo
	@echo "Demo outputs: $(DEMO_DIR)/bids/derivatives/bids_taskenc"
	@echo "  participant maps: $(DEMO_DIR)/bids/derivatives/bids_taskenc/sub-*/func/"
	@echo "  group results:    $(DEMO_DIR)/bids/derivatives/bids_taskenc/group/"
	@echo "  reports:          $(DEMO_DIR)/bids/derivatives/bids_taskenc/{sub-*,group}.html, logs/CITATION.md"

bench: venv
	$(PY) benchmarks/ridge.py --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache docs/_build docs/auto_examples
