# Sourced by scripts/test.sh and scripts/demo.sh: idempotent set-up of the project's venv.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.llmcost-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    touch "$stamp"
fi
for script in .ci/install-*.sh; do
    [ -f "$script" ] && bash "$script"
done
# tiktoken downloads its encodings on first use; offline, use the copies shipped with the tests.
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d tests/data/tiktoken ]; then
    export TIKTOKEN_CACHE_DIR="$(mktemp -d)"
    cp tests/data/tiktoken/* "$TIKTOKEN_CACHE_DIR"/ 2>/dev/null || true
fi
