# Every target creates .venv on first use and installs the project into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet 'torch>=2.1,<=2.14.1' || echo "torch not installed: PyTorch tests will skip"
	# tf_keras reads legacy tf.keras files; --no-deps keeps it from replacing tensorflow-cpu.
	$(BIN)/python -m pip install --quiet --no-deps 'tf_keras~=2.21.0' || echo "tf_keras not installed: legacy-format tests will skip"
	# Real third-party models the tests reuse, from registry wheels: the weights only (--no-deps).
	$(BIN)/python -m pip install --quiet --no-deps 'facenet-pytorch==2.6.0' 'basic-pitch==0.4.0' || echo "facenet-pytorch / basic-pitch not installed: real-model tests will skip"
	$(BIN)/python -m pip install --quiet 'onnx>=1.15' || echo "onnx not installed: ONNX tests will skip"
	@touch $(STAMP)

demo: $(STAMP)
	@PATH=$(CURDIR)/$(BIN):$$PATH bash examples/demo.sh

# The fast suite (under 6 minutes on 2 cores); CI runs it and then the slow end-to-end tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench.json
