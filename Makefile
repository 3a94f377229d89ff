# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
WORKERS ?= 2

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,nowcast,radar]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(WORKERS) -q

demo: $(STAMP)
	$(VENV)/bin/sfp demo

bench: $(STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,nowcast,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
