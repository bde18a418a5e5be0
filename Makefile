# Two entry points: `make demo` (the suite against the embedded sandbox) and `make test` (the self-tests).
# Each installs what it needs: a venv with the package, and the Debian packages when missing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# kubernetes-client is Debian's kubectl (1.20); a kubectl already at /usr/bin/kubectl (another package's) is kept.
DEBS := knot pebble nginx chromium $(if $(wildcard /usr/bin/kubectl),,kubernetes-client)

.PHONY: demo test lint debs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

debs:
	@if ! { test -x /usr/sbin/knotd && test -x /usr/bin/pebble && test -x /usr/sbin/nginx && test -x /usr/bin/chromium && test -x /usr/bin/kubectl; }; then \
		echo "installing Debian packages: $(DEBS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	fi

demo: $(BIN)/.installed debs
	$(BIN)/aksid demo --reports-dir reports

lint: $(BIN)/.installed
	$(BIN)/ruff check aksid suites tests fixtures bench examples

test: $(BIN)/.installed debs lint
	$(BIN)/python -m pytest tests -n 2 -p no:cacheprovider

clean:
	rm -rf $(VENV) reports/*.json reports/*.xml reports/*.md reports/*.html reports/*.sarif
