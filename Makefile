# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.avssl-installed

.PHONY: setup test demo bench clean

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

# pytest exits 5 when it collects no test; treat that as a failure of the suite, never as success.
test: $(STAMP)
	$(PY) -m pytest -q --timeout=900 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

demo: $(STAMP)
	$(VENV)/bin/avssl demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/loader.py

clean:
	rm -rf $(VENV) .pytest_cache
