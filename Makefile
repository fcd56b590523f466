# The two commands of the README's quick start. Each creates the virtual environment and
# installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
OUT ?= hipaacheck-demo
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

# Scan the built-in lab. The lab is seeded with broken configuration, so the scan's own exit
# code is 1 (failures found) or 3 (something unverified); either is a successful demo.
demo: $(BIN)/.installed
	@$(BIN)/hipaacheck demo --out $(OUT); code=$$?; \
	if [ $$code -le 1 ] || [ $$code -eq 3 ]; then \
	  test -s $(OUT)/report.html && echo "report: $(OUT)/report.html (exit code $$code)"; \
	else exit $$code; fi

test: $(BIN)/.installed
	$(BIN)/pytest -n 2 -q

lint: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet mypy ruff
	$(BIN)/ruff check hipaacheck checks tests
	$(BIN)/mypy hipaacheck checks

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
