#!/usr/bin/env bash
# Refresh the locks after changing dependencies in pyproject.toml (or to take newer releases: --upgrade).
#   scripts/lock.sh              keep every pinned version that still fits pyproject.toml
#   scripts/lock.sh --upgrade    the newest versions pyproject.toml allows
# requirements/test.lock: every package the tests, the demo and the editable install use, with hashes, valid on
# Python 3.11-3.13 and every platform (one universal resolution). requirements/tools.lock: uv itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh
compile=(pip compile --universal --python-version 3.11 --generate-hashes --no-emit-index-url --no-emit-find-links
         --custom-compile-command "scripts/lock.sh" "$@")
"$UV" "${compile[@]}" pyproject.toml requirements/build.in --extra test -o requirements/test.lock
"$UV" "${compile[@]}" requirements/tools.in -o requirements/tools.lock
