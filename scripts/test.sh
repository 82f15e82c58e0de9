#!/usr/bin/env bash
# Set up everything the tests need (venv, Python packages, system packages) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
