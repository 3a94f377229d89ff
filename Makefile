# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
WORKERS ?= 2

# Bytecode: pip skips compiling every file of torch and friends (--no-compile, ~40 s), and Python writes the cache
# of what is actually imported on first use, even where the environment turns that off (PYTHONDONTWRITEBYTECODE):
# without it every `sfp` process would compile torch and Lightning again (~20 s instead of ~6 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -c constraints.txt -e '.[test,nowcast,radar]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(WORKERS) --dist worksteal -q

demo: $(STAMP)
	$(VENV)/bin/sfp demo

bench: $(STAMP)
	$(VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -c constraints.txt -e '.[test,nowcast,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
