# `make demo` and `make test` set up .venv on first use, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

demo: $(VENV)/.installed
	$(BIN)/vaetools demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh $(VENV)
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache
