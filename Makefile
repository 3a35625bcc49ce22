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
	# torch first, pinned: these machines hold the CPU build of 2.13.0 on disk, and
	# a looser requirement with no torch installed would pull a CUDA build of GBs.
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
