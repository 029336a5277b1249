# The two commands of the README's quick start: `make demo` and `make test`.
# Each installs what it needs: Debian's bubblewrap (the sandbox), a virtualenv, the project.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint system-deps venv bench clean

system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  echo "installing bubblewrap (the sandbox) with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; }

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "installing loopwright[dev,local] (building llama-cpp-python takes ~6 min the first time)"
	$(PY) -m pip install -q -e '.[dev,local]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

demo: system-deps venv
	@echo "== triage of examples/issues/crash.md on examples/sample-repo (embedded model) =="
	$(VENV)/bin/loopwright run triage --repo examples/sample-repo \
	  --issue-file examples/issues/crash.md \
	  --labels "bug,enhancement,question,documentation,needs-info,priority: high,priority: critical,parser,docs"
	@echo
	@echo "== the same loop on examples/issues/feature.md, as JSON =="
	$(VENV)/bin/loopwright run triage --repo examples/sample-repo \
	  --issue-file examples/issues/feature.md --json \
	  --labels "bug,enhancement,question,documentation,needs-info,priority: high,priority: critical,parser,docs"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: system-deps venv lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/triage_eval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
