# The two commands of the README: `make demo` and `make test` (CONTRACT section 1).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
BIN := $(VENV)/bin

.PHONY: setup setup-test demo test test-fast clean

setup:
	tools/setup_venv.sh "$(VENV)" "$(PYTHON)" "$(TORCH)" mpi

setup-test:
	tools/setup_venv.sh "$(VENV)" "$(PYTHON)" "$(TORCH)" mpi,test

demo: setup
	$(BIN)/genenkf demo

test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The default suite without the slow checks (quick feedback while developing).
test-fast: setup-test
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf runs .pytest_cache build *.egg-info
