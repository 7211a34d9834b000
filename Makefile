# `make demo`: set up and run the main job; `make test`: set up and run the tests.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,data]'
	touch $(STAMP)

.PHONY: demo test benchmark
demo: $(STAMP)
	rm -rf runs/ethanol
	$(BIN)/forcefit train examples/ethanol.yaml
	$(BIN)/forcefit md runs/ethanol/model.ffm data/ethanol_gfn2xtb_500K.extxyz --steps 2000 --timestep 0.5 --temperature 300

test: $(STAMP)
	$(BIN)/python -m pytest -q

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py
