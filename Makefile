# hierro: two commands on a fresh machine with Python 3.11+
#   make demo   set up the virtualenv and run the main job on its built-in default
#   make test   set up the virtualenv with the test tools and run the whole suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench accuracy clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hierro needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[plot,ray,parquet]' \
	    'pytest>=8.0' 'hypothesis>=6.100' \
	    'ruff>=0.5' 'mypy>=1.10' 'import-linter>=2.0' 'types-PyYAML>=6.0'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hierro plan

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/estimate_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
