#!/bin/sh
# Build the documentation site into docs/_build/html, every warning an error (as CI builds it).
# Needs the docs extra: pip install -e ".[docs]"
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-../.venv/bin/python}
"$PYTHON" -m sphinx -W --keep-going -b html . _build/html
