#!/usr/bin/env bash
# Installs the Python package the way its README says (`pip install ./bindings/python`, here in
# the dev profile to reuse the test build) into the tools' virtual environment, then runs the
# pytest suite and the README quickstart against real servers.
# Needs: E2EE_SERVER_BIN and the variables scripts/bindings-tools.sh prints.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PATH="$PYTHON_VENV/bin:$PATH"
MATURIN_PEP517_ARGS="--profile dev" pip install -q --no-build-isolation --disable-pip-version-check \
  --force-reinstall --no-deps "$here"
python -m pytest -q -p no:cacheprovider "$here/tests"
# The benchmark (bindings/bench.sh runs it in earnest) with tiny counts, so it cannot rot.
python "$here/bench/bench.py" 1 3 1 >/dev/null
"$here/../quickstart.sh" "$here/README.md" python > "$GEN/quickstart.py"
[ -s "$GEN/quickstart.py" ] || { echo "python: no quickstart in README.md" >&2; exit 1; }
output="$("$here/../with-server.sh" python "$GEN/quickstart.py")"
echo "$output"
[ "$output" = "bob got b'hello bob' from alice" ] || { echo "python: the quickstart printed something else" >&2; exit 1; }
echo "python: the README quickstart ran"
