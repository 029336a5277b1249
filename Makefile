# The two commands of the README's quick start: `make demo` and `make test`.
# Each installs what it needs: Debian's bubblewrap (the sandbox), a virtualenv, the project.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# As root, sandboxed commands run as this unprivileged user (rlimits do not bind root).
SANDBOX_USER := $(shell [ "$$(id -u)" = 0 ] && echo loopwright-sbx)
DEMO_DIR ?= /tmp/loopwright-demo
# llama.cpp built for the machine it was built on (GGML_NATIVE) crashed the embedded model on
# another CPU (a general protection fault in libggml-cpu on AVX-512 FP16 hosts) when pip reused a
# cached wheel: build it portable, and never from pip's wheel cache.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test test-deps lint system-deps venv bench bench-realbugs bench-adversarial clean

system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  echo "installing bubblewrap (the sandbox) with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; }
	@if [ -n "$(SANDBOX_USER)" ] && ! id -u $(SANDBOX_USER) >/dev/null 2>&1; then \
	  echo "creating the unprivileged sandbox user $(SANDBOX_USER)"; \
	  useradd --system --no-create-home --shell /usr/sbin/nologin --user-group $(SANDBOX_USER); fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "building llama-cpp-python for any x86-64 CPU (~6-10 min, once per virtualenv)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q --no-cache-dir 'llama-cpp-python[server]>=0.3'
	@echo "installing loopwright[dev,local,learn]"
	$(PY) -m pip install -q -e '.[dev,local,learn]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

DEMO_LABELS := bug,enhancement,question,documentation,needs-info,priority: high,priority: critical,parser,docs

demo: system-deps venv
	@rm -rf $(DEMO_DIR)/data
	@echo "== triage of examples/issues/crash.md on examples/sample-repo (embedded model) =="
	LOOPWRIGHT_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/loopwright run triage \
	  --repo examples/sample-repo --issue-file examples/issues/crash.md --labels "$(DEMO_LABELS)"
	@echo
	@echo "== train the sample repository's issue-type classifier =="
	@echo "   (examples/triage-history.csv is a demo fixture: 120 made-up labelled issues)"
	LOOPWRIGHT_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/loopwright train triage \
	  --from-csv examples/triage-history.csv --repo examples/sample-repo
	@echo
	@echo "== the same two issues again: the classifier decides the type, no model call =="
	LOOPWRIGHT_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/loopwright run triage \
	  --repo examples/sample-repo --issue-file examples/issues/crash.md --labels "$(DEMO_LABELS)"
	@echo
	LOOPWRIGHT_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/loopwright run triage \
	  --repo examples/sample-repo --issue-file examples/issues/feature.md --json \
	  --labels "$(DEMO_LABELS)"
	@echo
	@echo "== fix loop (reproduce -> patch -> re-test) on a buggy fixture project, embedded model =="
	@echo "   (one attempt each: Gemma 3 270M rarely manages it; the loop must say so, quickly)"
	$(PY) -m tests.support.fixrepo $(DEMO_DIR)
	LOOPWRIGHT_SANDBOX_USER=$(SANDBOX_USER) LOOPWRIGHT_DATA_DIR=$(DEMO_DIR)/data \
	  $(VENV)/bin/loopwright run fix --repo $(DEMO_DIR)/calc --issue-file $(DEMO_DIR)/issue.md \
	  || echo "(the fix loop ended without a fix: see its exit reason above)"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The dashboard's browser test drives Debian's chromium through its chromedriver.
test-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver (the dashboard's browser test) with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null \
	  || echo "could not install chromium: the browser test will be skipped (apt-get install chromium chromium-driver)"; }

test: system-deps test-deps venv lint
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/triage_eval.py
	$(PY) bench/ci_logs.py
	$(PY) bench/ci_tokens.py

# Real bugs through `loopwright run fix` with the oracle and two wrong oracles (~25 min; pip
# needs the package index for each project's setup).
bench-realbugs: system-deps venv
	LOOPWRIGHT_SANDBOX_USER=$(SANDBOX_USER) $(PY) bench/realbugs.py

# The adversarial corpus (tests/support/adversarial.py): every attack through `loopwright run fix`;
# none may be kept, the right fix must be (~10 min; `bench/adversarial.py --in-process` takes ~2).
bench-adversarial: system-deps venv
	LOOPWRIGHT_SANDBOX_USER=$(SANDBOX_USER) $(PY) bench/adversarial.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Soak (issue 12): signed deliveries under GitHub faults while workers get kill -9/SIGTERM and the
# intake kill -9, on SQLite and PostgreSQL, then jobs/s for 1, 2, 4 workers (about 3 min at the
# default 300 issues; SOAK_ARGS="--compare DIR" runs another checkout too, side by side).
.PHONY: bench-soak
bench-soak: venv
	$(PY) bench/soak.py $(SOAK_ARGS)

# The issue-type classifier (issue 13) on the NLBSE'24 training split: the TF-IDF + LR baseline,
# the shipped model and the alternatives, by repeated stratified 5-fold CV and
# leave-one-repository-out, with ms/issue and training time (about 20 min on 2 cores;
# TRIAGE_ARGS="--seeds 10 --skip-loro --candidates default" for a quick look).
.PHONY: bench-triage
bench-triage: venv
	$(PY) bench/triage_eval.py --classifier $(TRIAGE_ARGS)
