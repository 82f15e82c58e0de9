#!/usr/bin/env bash
# Set up everything the tests need and run every test: the locked Python packages (scripts/setup.sh), then the
# system packages that the browser, PostgreSQL and labextension tests need (Debian's chromium, postgresql, nodejs
# and npm, installed when missing; that needs root, and without it this stops with one line naming what to
# install). Arguments go to pytest: scripts/test.sh -k capture -x
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
for script in .ci/install-*.sh; do
    bash "$script"
done
exec "$VENV/bin/python" -m pytest "$@"
