#!/usr/bin/env bash
# Set up (Python packages only: no root, no system packages) and run the demo: `llmcost demo` executes the
# packaged quickstart notebook on the built-in offline fake provider (the real OpenAI API if OPENAI_API_KEY is
# set) and writes artifacts/demo/quickstart.ipynb and .html, readable without a kernel or internet.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec "$VENV/bin/llmcost" demo --out artifacts/demo "$@"
