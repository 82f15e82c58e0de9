#!/usr/bin/env bash
# Node.js and npm for tests/test_package_labextension.py, which rebuilds the JupyterLab extension from
# labextension/ and checks it reproduces the committed bundle (users never need Node: the wheel ships the
# built files). Idempotent: installs Debian's `nodejs` and `npm` only when `npm` is missing.
set -euo pipefail
if command -v npm > /dev/null && command -v node > /dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-node: node/npm are missing; run as root (or: sudo apt-get install -y nodejs npm)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nodejs npm > /dev/null
