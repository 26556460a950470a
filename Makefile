# The two commands of the README: `make lab` and `make test`. Both set up what is missing first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup host lab test lint

setup: host $(VENV)/.installed

host:
	@scripts/setup-host.sh

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lab: setup
	$(BIN)/inv lab.up lab.rehearse

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest
