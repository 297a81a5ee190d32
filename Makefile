# Two commands do everything on a fresh machine:
#   make demo   set up .venv if needed, run the workshop steps with their defaults, then serve the page
#   make test   set up .venv (with test tools) if needed, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_USE_LEGACY_KERAS := 1
STEPS := 1_prepare_dataset 2_tokenize 3_train 4_generate 6_mini_gpt

.PHONY: setup demo test lint standin exercises check-exercises wheelhouse clean-venv

$(VENV)/.installed: requirements.txt requirements-dev.txt .ci/install.sh
	bash .ci/install.sh $(VENV) requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
	@echo "prêt : activez l'environnement avec : source $(VENV)/bin/activate"

demo: $(VENV)/.installed
	@for step in $(STEPS); do echo "== $$step"; $(PY) aurore/$${step}_solution.py || exit 1; done
	$(PY) aurore/5_flask_solution.py

test: $(VENV)/.installed lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check

# Wheels of the pinned requirements for an offline install (docs/organisers.md); for laptops of another kind:
#   make wheelhouse PLATFORM=win_amd64   (or macosx_12_0_arm64; PYTHON_VERSION defaults to 3.11)
#   make wheelhouse REQUIREMENTS=requirements-dev.txt   (to run make test offline too)
REQUIREMENTS ?= requirements.txt
PYTHON_VERSION ?= 3.11
wheelhouse:
	python3 -m pip download --only-binary=:all: -r $(REQUIREMENTS) setuptools wheel -d wheelhouse \
	  $(if $(PLATFORM),--platform $(PLATFORM) --python-version $(PYTHON_VERSION))

standin: $(VENV)/.installed
	$(PY) aurore/1_prepare_dataset_solution.py
	$(PY) -m aurore build-standin

exercises: $(VENV)/.installed
	$(PY) -m aurore exercises

check-exercises: $(VENV)/.installed
	$(PY) -m aurore exercises --check

clean-venv:
	rm -rf $(VENV)
