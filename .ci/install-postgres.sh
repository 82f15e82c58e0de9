#!/usr/bin/env bash
# PostgreSQL server binaries for the team-sync tests (tests/pg_server.py starts a throw-away server on
# 127.0.0.1 from them). Idempotent: installs Debian's `postgresql` only when initdb/pg_ctl are missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null && compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-postgres: PostgreSQL is missing; run as root (or: sudo apt-get install -y postgresql)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql > /dev/null
# Debian's package starts a cluster of its own; the tests use their own throw-away servers.
if command -v pg_lsclusters > /dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _; do
        pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
    done
fi
