#!/usr/bin/env bash
# Chromium for the browser tests (tests/test_notebook_browser.py drives it through Playwright with
# executable_path=/usr/bin/chromium; `playwright install` is never used). Idempotent: installs Debian's
# `chromium` only when /usr/bin/chromium is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: /usr/bin/chromium is missing; run as root (or: sudo apt-get install -y chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium > /dev/null
