# Sourced by scripts/lock.sh and scripts/drift.sh: uv (the version and hashes of requirements/tools.lock) in
# .venv-tools, for refreshing the lock and for the drift check. The tests and the demo do not need it.
if ! cmp -s requirements/tools.lock .venv-tools/.llmcost-lock; then
    rm -rf .venv-tools
    "${PYTHON:-python3}" -m venv .venv-tools
    .venv-tools/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/tools.lock
    cp requirements/tools.lock .venv-tools/.llmcost-lock
fi
UV="$PWD/.venv-tools/bin/uv"
