#!/usr/bin/env bash
# Rebuild the prebuilt JupyterLab extension (llmcost_nb/labextension/, committed, shipped in the wheel) from
# its TypeScript sources in labextension/. Needs Node.js >= 20 and npm (the npm registry, or npm's cache);
# users never run this: `pip install llmcost_nb` brings the built files.
#   scripts/build_labextension.sh            # PYTHON=.venv/bin/python by default
# The build is reproducible (tests/test_package_labextension.py rebuilds and compares byte for byte): npm ci
# from the committed package-lock.json, and always in the same folder, BUILD_DIR, because webpack names the
# module-federation container by its absolute path (measured: the same sources built in two folders differ
# in remoteEntry.*.js only, by that module id).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
export PATH="$(dirname "$PYTHON"):$PATH"  # jupyter labextension runs jupyter-builder
src="$(cd "${LABEXTENSION_SRC:-$here/labextension}" && pwd)"
out="$(dirname "$src")/llmcost_nb/labextension"  # package.json's jupyterlab.outputDir
build=/tmp/llmcost_nb-labextension-build
exec 9> "$build.lock"
flock 9  # one build at a time in that folder
rm -rf "$build"
mkdir -p "$build/labextension" "$build/llmcost_nb"
cp -r "$src"/package.json "$src"/package-lock.json "$src"/tsconfig.json "$src"/src "$src"/schema \
    "$src"/style "$build/labextension/"
cd "$build/labextension"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
npx tsc
# the shared-module versions come from the JupyterLab this venv runs (its staging package.json), not npm
core="$("$PYTHON" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json"))')"
"$PYTHON" -m jupyter labextension build --core-package-file "$core" . 2>&1 | grep -v -i deprecat | tail -n 3
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$build/llmcost_nb/labextension" "$out"
rm -rf "$build"
