# The two commands of the README: `make lab` and `make test`. Both set up what is missing first.
# `make lint`, `make typecheck` and `make unit` need only the virtual environment: no root, no
# Docker. `make lock` pins constraints.txt anew from what the extras resolve to today.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
INSTALL := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup host venv lab test lint typecheck unit lock

setup: host venv

host:
	@scripts/setup-host.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade pip
	$(INSTALL) -e '.[test,lab]'
	touch $@

lab: setup
	$(BIN)/inv lab.up lab.rehearse

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m unit

test: setup lint typecheck
	scripts/test.sh $(BIN)

# Resolves the extras afresh in a scratch venv, so nothing installed by hand slips into the pins.
lock:
	rm -rf $(VENV).lock
	$(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install -q --upgrade pip
	$(VENV).lock/bin/pip install -q -e '.[test,lab]'
	{ echo "# Every package \`make\` installs, pinned; regenerate with \`make lock\`."; \
	  $(VENV).lock/bin/pip freeze --all --exclude-editable; } > constraints.txt
	rm -rf $(VENV).lock
