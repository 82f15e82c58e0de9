#!/usr/bin/env bash
# Set up and run the demo: executes notebooks/quickstart.ipynb (on the built-in offline fake provider unless
# OPENAI_API_KEY is set) and writes artifacts/demo/quickstart.ipynb and .html, viewable without a kernel or
# internet.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec .venv/bin/python -m llmcost_nb.demo "$@"
