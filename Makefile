# One-command set-up: `make demo` and `make test` create .venv and install everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := .qloom-cache/datasets.stamp
PYTEST_ARGS ?=

.PHONY: demo test lint format data clean bench

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: 2.13.0 is a CPU wheel on disk; any other request downloads a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

$(DATA): scripts/install_datasets.sh
	mkdir -p .qloom-cache
	sh scripts/install_datasets.sh
	touch $(DATA)

data: $(DATA)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench

test: $(STAMP) $(DATA)
	$(BIN)/ruff check src tests bench
	QLOOM_QUIET=1 $(BIN)/pytest -q -n 2 $(PYTEST_ARGS)

demo: $(STAMP) $(DATA)
	$(BIN)/python -m qloom.demo

bench: $(STAMP)
	$(BIN)/python bench/executor_speed.py

clean:
	rm -rf build .qloom-cache .pytest_cache
