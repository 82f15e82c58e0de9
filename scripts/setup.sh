# Sourced by scripts/test.sh, scripts/demo.sh and scripts/drift.sh: the project's venv holding exactly the packages
# of requirements/test.lock (versions and hashes), and this checkout installed editable on top. Needs only Python
# 3.11+ with venv and pip: no root, no system packages (the tests' system packages are scripts/test.sh's affair).
#
#   PYTHON=python3.12 scripts/test.sh      another interpreter; its venv is .venv-3.12 (the default one: .venv)
#
# The venv is rebuilt from scratch whenever the lock changes, so it never keeps a package the lock dropped.
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' > /dev/null 2>&1; then
    echo "setup: llmcost_nb needs Python 3.11 or newer with venv; '$PYTHON' is $("$PYTHON" --version 2>&1 | head -n 1 || true). Set PYTHON=/path/to/python3.11 (or newer)." >&2
    exit 1
fi
if [ -z "${VENV:-}" ]; then
    if [ "$PYTHON" = python3 ]; then
        VENV=.venv
    else
        VENV=".venv-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    fi
fi
lock=requirements/test.lock
if ! cmp -s "$lock" "$VENV/.llmcost-lock"; then
    echo "setup: installing the locked packages into $VENV (first run, or the lock changed)" >&2
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$lock"
    rm -f "$VENV/.llmcost-editable"
    cp "$lock" "$VENV/.llmcost-lock"
fi
if [ ! -f "$VENV/.llmcost-editable" ] || [ pyproject.toml -nt "$VENV/.llmcost-editable" ]; then
    # --no-deps: every dependency came from the lock; --no-build-isolation: setuptools is in the lock too.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    touch "$VENV/.llmcost-editable"
fi
# The JupyterLab meter: an editable install gets no data files (setuptools installs them from wheels only), so
# link the built labextension and the server extension's config into the venv where a wheel puts them. Links:
# a rebuilt bundle (scripts/build_labextension.sh) is live at once.
mkdir -p "$VENV/share/jupyter/labextensions" "$VENV/etc/jupyter/jupyter_server_config.d"
ln -sfn "$PWD/llmcost_nb/labextension" "$VENV/share/jupyter/labextensions/llmcost-nb"
ln -sf "$PWD/jupyter-config/jupyter_server_config.d/llmcost_nb.json" \
    "$VENV/etc/jupyter/jupyter_server_config.d/llmcost_nb.json"
source scripts/tiktoken.sh
