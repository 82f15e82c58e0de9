#!/usr/bin/env bash
# The drift check: the suite on versions other than the lock's, to see what the next lock refresh (latest) or a
# user with older packages (lowest) would meet. CI keeps using the lock.
#   scripts/drift.sh latest [pytest args]   the newest releases pyproject.toml allows   (venv: .venv-drift-latest)
#   scripts/drift.sh lowest [pytest args]   the lowest declared versions of our direct dependencies, newest of
#                                           the rest (uv --resolution lowest-direct)    (venv: .venv-drift-lowest)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    latest) resolution=highest ;;
    lowest) resolution=lowest-direct ;;
    *) echo "usage: scripts/drift.sh latest|lowest [pytest args]" >&2; exit 2 ;;
esac
which="$1"
shift
source scripts/uv.sh
VENV=".venv-drift-$which"
rm -rf "$VENV"
"$UV" venv --quiet --python "${PYTHON:-python3}" "$VENV"
# requirements/build.in: setuptools, which tests/test_wheel.py builds the wheel with (--no-build-isolation)
"$UV" pip install --quiet --python "$VENV/bin/python" --resolution "$resolution" -e ".[test]" -r requirements/build.in
echo "drift ($which): $("$UV" pip freeze --python "$VENV/bin/python" | grep -E -i '^(openai|anthropic|google-genai|genai-prices|pandas|altair|sqlite-utils|ipython|ipywidgets|numpy|httpx2?)==' | tr '\n' ' ')" >&2
for script in .ci/install-*.sh; do
    bash "$script"
done
source scripts/tiktoken.sh
exec "$VENV/bin/python" -m pytest "$@"
