# `make run` and `make test` build whatever is missing (venv, pip, npm, contracts) and nothing else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.emc-installed
# pip through the local package index prints a warning per package; keep only real output.
pip = $(BIN)/python -m pip install -q --disable-pip-version-check $(1) 2>&1 | { grep -v '^WARNING: Location' || true; }; test $${PIPESTATUS[0]} -eq 0
NODE_STAMP := node_modules/.emc-installed
BUILD_STAMP := .build/.emc-compiled
CONTRACTS := $(shell find contracts -name '*.vy' -o -name '*.vyi' 2>/dev/null)
# anvil and cast from npm, for anything run through make (the venv also finds them, see $(STAMP)).
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)

.PHONY: all env run test test-fast bench lint clean devnet

all: env

env: $(STAMP) $(NODE_STAMP) $(BUILD_STAMP)

$(STAMP): requirements/base.txt requirements/net.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call pip,--upgrade pip)
	$(call pip,-r requirements/base.txt)
	$(call pip,-r requirements/net.txt)
	$(call pip,--no-deps --no-build-isolation -e .)
	# Every interpreter of this venv puts the venv's bin (the pip vyper, which ape-vyper looks up on
	# PATH) and the repo's node_modules/.bin (the npm anvil, which ape-foundry looks up on PATH) on
	# PATH at start-up, so `.venv/bin/ape ...` works without the user touching PATH.
	$(BIN)/python -c "import site; open(site.getsitepackages()[0] + '/emc_toolpath.pth', 'w').write('import os; os.environ[\"PATH\"] = os.pathsep.join([\"$(CURDIR)/$(BIN)\", \"$(CURDIR)/node_modules/.bin\", os.environ.get(\"PATH\", \"\")])\n')"
	touch $@

# `npm ci`: installs exactly the committed lock (every platform's optional anvil/cast package is
# listed; npm fetches only this platform's) and never rewrites it (docs/decisions.md).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BUILD_STAMP): $(STAMP) $(CONTRACTS) ape-config.yaml
	$(BIN)/ape compile --force
	mkdir -p .build && touch $@

run: env
	$(BIN)/emc devnet

test: env
	$(BIN)/python -m pytest -q

bench: env
	$(BIN)/python -m bench

lint: env
	$(BIN)/ruff check offchain tests scripts bench
	$(BIN)/ruff format --check offchain tests scripts bench

clean:
	rm -rf $(VENV) node_modules .build
