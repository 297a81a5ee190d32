# A developer convenience: participants and CI use `python -m aurore …`, which runs the same on Windows, macOS and
# Linux (README). Each target is one of those commands.
PYTHON ?= python3
STEPS := 1_prepare_dataset 2_tokenize 3_train 4_generate 6_mini_gpt

.PHONY: setup demo test lint doctor standin exercises check-exercises kit clean-venv

setup:
	$(PYTHON) -m aurore setup --dev

demo:
	$(PYTHON) -m aurore demo

test:
	$(PYTHON) -m aurore test $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check

doctor:
	$(PYTHON) -m aurore doctor

standin:
	$(PYTHON) -m aurore setup --no-doctor
	.venv/bin/python aurore/1_prepare_dataset_solution.py
	.venv/bin/python -m aurore build-standin

exercises:
	$(PYTHON) -m aurore exercises

check-exercises:
	$(PYTHON) -m aurore exercises --check

# The organisers' USB key (docs/organisers.md): make kit KIT=/media/usb/aurore-kit
KIT ?= kit
kit:
	$(PYTHON) -m aurore kit $(KIT)

clean-venv:
	rm -rf .venv
