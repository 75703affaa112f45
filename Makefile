# Every target creates .venv on first use and installs into it what that target needs:
#   make demo   the package and its `demo` extra (scikit-learn) only: no PyTorch, no test tools
#   make test   the package, the `test` extra, PyTorch and tf_keras (their tests skip without them)
#   make docs   MkDocs only (the `docs` extra); writes the site to site/
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# setuptools prints an "Editable installation" box (a UserWarning) on every editable install of a
# flat-layout project; it says nothing about this one.
PIP := PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet
DEMO_STAMP := $(VENV)/.demo-installed
TEST_STAMP := $(VENV)/.test-installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test test-slow docs bench lint format clean

$(BIN)/python:
	@echo "Creating $(VENV)"
	@$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PIP) --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing reuse and scikit-learn into $(VENV) (once: about 370 MB to download, 1.8 GB on disk)"
	@$(PIP) -e '.[demo]'
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing reuse, the test tools, PyTorch and tf_keras into $(VENV) (once: about 3.5 GB to download, 7.7 GB on disk)"
	@$(PIP) -e '.[test]'
	@$(PIP) 'torch>=2.1,<=2.14.1' || echo "torch not installed: PyTorch tests will skip"
	@# tf_keras reads legacy tf.keras files; --no-deps keeps it from replacing tensorflow-cpu.
	@$(PIP) --no-deps 'tf_keras~=2.21.0' || echo "tf_keras not installed: legacy-format tests will skip"
	@# Real third-party models the tests reuse, from registry wheels: the weights only (--no-deps).
	@$(PIP) --no-deps 'facenet-pytorch==2.6.0' 'basic-pitch==0.4.0' || echo "facenet-pytorch / basic-pitch not installed: real-model tests will skip"
	@$(PIP) 'onnx>=1.15' || echo "onnx not installed: ONNX tests will skip"
	@touch $@ $(DEMO_STAMP)

# The `docs` extra alone: building the site needs no TensorFlow.
$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing MkDocs into $(VENV) (once)"
	@$(PIP) 'mkdocs>=1.6'
	@touch $@

demo: $(DEMO_STAMP)
	@PATH=$(CURDIR)/$(BIN):$$PATH bash examples/demo.sh

# The fast suite (under 6 minutes on 2 cores); CI runs it and then the slow end-to-end tests.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m slow

# The documentation site (docs/, mkdocs.yml): --strict fails on a broken link or a page missing from the nav.
docs: $(DOCS_STAMP)
	$(BIN)/python -m mkdocs build --strict --quiet --site-dir site

bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench.json site
