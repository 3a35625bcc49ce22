# cardiorisk: `make demo` sets everything up and serves; `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CARDIORISK_DATA ?= $(abspath ../shared/data)

.PHONY: install prepare train demo serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a looser requirement alone pulls a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

prepare: install
	$(BIN)/cardiorisk prepare

train: prepare
	$(BIN)/cardiorisk train

demo: install
	$(BIN)/cardiorisk demo

serve: install
	$(BIN)/cardiorisk serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/predict.py

clean:
	rm -rf var
