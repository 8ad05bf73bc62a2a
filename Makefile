# The two commands a newcomer needs: `make demo` and `make test`.
# Each one builds the virtualenv it needs; both are safe to run twice.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench kafka-up kafka-down clean prometheus-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# One minute of live changes, then the convergence summary; `make demo ARGS_DEMO=` runs until Ctrl-C.
ARGS_DEMO ?= --duration 60
demo: $(STAMP)
	$(VENV)/bin/edusync demo $(if $(ARGS),$(ARGS),$(ARGS_DEMO))

# promtool (alert-rule unit tests) and the Prometheus server (dashboard and alert queries against
# real data) come from Debian's `prometheus` package; the tests fail, never skip, without them.
prometheus-tools:
	@command -v promtool >/dev/null && test -x /usr/bin/prometheus || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null)

test: $(STAMP) prometheus-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy worker handlers schemas simulators deploy bench
	$(VENV)/bin/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15 $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy worker handlers schemas simulators deploy bench

bench: $(STAMP)
	$(VENV)/bin/python -m bench.run_all

kafka-up: $(STAMP)
	$(VENV)/bin/edusync kafka up

kafka-down: $(STAMP)
	$(VENV)/bin/edusync kafka down

clean:
	rm -rf $(VENV) var
