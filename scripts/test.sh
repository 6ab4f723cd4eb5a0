#!/usr/bin/env bash
# Set up a virtual environment with medgap and its test/train extras, then run the test suite.
# Usage: bash scripts/test.sh [pytest args...]   (README's test command; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,train]'
# pypiqe is a test reference for PIQE; its metadata asks for opencv-python, which would overwrite the cv2 of
# opencv-contrib-python-headless (medgap's single cv2 provider), so it is installed without dependencies.
.venv/bin/python -m pip install -q --no-deps 'pypiqe>=1.2'
# grad-cam (medgap explain) likewise asks for opencv-python-headless; its other dependencies are in the train extra.
.venv/bin/python -m pip install -q --no-deps 'grad-cam>=1.5'
# slow-marked tests (reference checks over all of ../shared/data, minutes each) run with: bash scripts/test.sh -m slow
exec .venv/bin/python -m pytest -n 2 --dist load -m "not slow" "$@"
