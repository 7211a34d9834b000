# `make demo`: set up and run the main job; `make test`: set up, lint and run the tests.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the torch pin lives in pyproject.toml only; its CPU build is installed first
TORCH := $(shell grep -o 'torch==[0-9.]*' pyproject.toml)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q '$(TORCH)'
	$(BIN)/pip install -q -e '.[test,data]'
	touch $(STAMP)

.PHONY: demo test lint benchmark
demo: $(STAMP)
	rm -rf runs/ethanol
	$(BIN)/forcefit train examples/ethanol.yaml
	$(BIN)/forcefit md runs/ethanol/model.ffm data/ethanol_gfn2xtb_500K.extxyz --steps 2000 --timestep 0.5 --temperature 300

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks data
	$(BIN)/ruff format --check src tests benchmarks data

test: lint
	$(BIN)/python -m pytest -q

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py
