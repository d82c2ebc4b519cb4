# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lab bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/flinkwire report captures/s1-plaintext.pcap --config captures/s1-plaintext.config.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Records the sample captures again from a real Flink cluster (root, a few minutes).
lab:
	bash captures/lab/run.sh all

# Speed and memory side by side with the tools users would otherwise pick (minutes).
bench: $(STAMP)
	$(BIN)/pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py

# The long fuzzing run (the test suite runs a short one).
fuzz: $(STAMP)
	FLINKWIRE_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q tests/fuzz -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info
