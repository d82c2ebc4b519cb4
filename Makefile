# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lab clean

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

clean:
	rm -rf $(VENV) build *.egg-info
