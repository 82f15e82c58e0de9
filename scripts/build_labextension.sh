#!/usr/bin/env bash
# Rebuild the prebuilt JupyterLab extension (llmcost_nb/labextension/, committed, shipped in the wheel) from
# its TypeScript sources in labextension/. Needs Node.js >= 20 and npm (the npm registry, or npm's cache);
# users never run this: `pip install llmcost_nb` brings the built files.
#   scripts/build_labextension.sh            # PYTHON=.venv/bin/python by default
# The build is deterministic (webpack content hashes): tests/test_package_labextension.py rebuilds into a
# temporary copy and checks the result is byte for byte the committed bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
export PATH="$(dirname "$PYTHON"):$PATH"  # jupyter labextension runs jupyter-builder
cd "${LABEXTENSION_SRC:-$here/labextension}"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
rm -rf lib tsconfig.tsbuildinfo "$("$PYTHON" -c 'import json; print(json.load(open("package.json"))["jupyterlab"]["outputDir"])')"
npx tsc
# the shared-module versions come from the JupyterLab this venv runs (its staging package.json), not npm
core="$("$PYTHON" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json"))')"
"$PYTHON" -m jupyter labextension build --core-package-file "$core" . 2>&1 | grep -v -i deprecat | tail -n 3
