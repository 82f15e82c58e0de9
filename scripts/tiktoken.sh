# Sourced by scripts/setup.sh and scripts/drift.sh: tiktoken downloads its encodings on first use; offline,
# use the copies shipped with the tests.
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d tests/data/tiktoken ]; then
    TIKTOKEN_CACHE_DIR="$(mktemp -d)"
    export TIKTOKEN_CACHE_DIR
    cp tests/data/tiktoken/* "$TIKTOKEN_CACHE_DIR"/ 2>/dev/null || true
fi
