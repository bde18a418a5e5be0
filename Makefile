# Two entry points: `make demo` (the suite against the embedded sandbox) and `make test` (the self-tests).
# Each installs what it needs: a venv with the package, and the Debian packages when missing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# kubernetes-client is Debian's kubectl (1.20); a kubectl already at /usr/bin/kubectl (another package's) is kept.
# The sandbox's daemons serve the demo and the tests; chromium only the tests (report.html's layout, headless),
# so `make demo` does not install a browser it never starts.
DEMO_DEBS := $(strip knot pebble nginx $(if $(wildcard /usr/bin/kubectl),,kubernetes-client))
DEMO_BINARIES := /usr/sbin/knotd /usr/bin/pebble /usr/sbin/nginx /usr/bin/kubectl
TEST_DEBS := $(DEMO_DEBS) chromium
TEST_BINARIES := $(DEMO_BINARIES) /usr/bin/chromium

.PHONY: demo test lint debs test-debs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

debs: PACKAGES := $(DEMO_DEBS)
debs: BINARIES := $(DEMO_BINARIES)
test-debs: PACKAGES := $(TEST_DEBS)
test-debs: BINARIES := $(TEST_BINARIES)
debs test-debs:
	@missing=""; for binary in $(BINARIES); do test -x "$$binary" || missing="$$missing $$binary"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $(PACKAGES) (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PACKAGES) >/dev/null; \
	fi

demo: $(BIN)/.installed debs
	$(BIN)/aksid demo --reports-dir reports

lint: $(BIN)/.installed
	$(BIN)/ruff check aksid suites tests fixtures bench examples

test: $(BIN)/.installed test-debs lint
	$(BIN)/python -m pytest tests -n 2 -p no:cacheprovider

clean:
	rm -rf $(VENV) reports/*.json reports/*.xml reports/*.md reports/*.html reports/*.sarif
