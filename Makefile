# The course's commands.  `make book` and `make test` are the only set-up a newcomer needs:
# both create .venv at the root when it is missing (and update it when pyproject.toml or
# constraints.txt change), with torch and torchvision pinned by constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv test lint format book book-clean lab clean

help:
	@echo "make book     build the HTML book into _build/html (executes every code cell)"
	@echo "make test     lint and run the whole test suite"
	@echo "make lab      open JupyterLab on the exercises"
	@echo "make format   format the code with ruff"
	@echo "make clean    remove the virtual environment and build outputs"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check cvloss_ref grading tests
	$(BIN)/ruff format --check cvloss_ref grading tests

format: venv
	$(BIN)/ruff format cvloss_ref grading tests
	$(BIN)/ruff check --fix cvloss_ref grading tests

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

book: venv
	$(BIN)/jupyter-book build --nitpick --warningiserror --keep-going .

book-clean:
	rm -rf _build

lab: venv
	$(BIN)/jupyter lab exercises

clean:
	rm -rf $(VENV) _build .pytest_cache .ruff_cache
