#!/usr/bin/env bash
# Creates (once) a Python virtual environment with the `deltalake` and `pyarrow` packages, used
# by tests/independent_reader.rs (and .ci/run) to read compactor's tables with a reader that
# shares no code with compactor, `duckdb`, used by tests/corpus_reduction.rs to write the
# same rows as DuckDB would, and `datasketches` (the Apache DataSketches C++ library's Python
# binding), used by tests/independent_reader.rs to decode the sketches of rollup tables. Prints
# the venv's python path on the last line of stdout.
#
#   tests/setup-pyreader.sh                 # venv at target/pyreader-venv (relative to the repo)
#   COMPACTOR_PYREADER_VENV=/tmp/v tests/setup-pyreader.sh
#   PYTHON=python3.12 tests/setup-pyreader.sh
#
# Reuses an existing venv when it already imports all four packages; installs what is missing
# into an existing one. Exits non-zero (with a message on stderr) when the venv cannot be made
# to import deltalake and pyarrow, for example without network access. duckdb and datasketches
# are optional: when one cannot be installed, a warning goes to stderr and the python is printed
# all the same (the tests that need them check for them themselves).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${COMPACTOR_PYREADER_VENV:-$repo/target/pyreader-venv}"
case "$venv" in
  /*) ;;
  *) venv="$repo/$venv" ;;
esac
python="${PYTHON:-python3}"
py="$venv/bin/python"

check() {
  "$py" -c 'import deltalake, pyarrow' >/dev/null 2>&1
}
check_duckdb() {
  "$py" -c 'import duckdb' >/dev/null 2>&1
}
check_datasketches() {
  "$py" -c 'import datasketches' >/dev/null 2>&1
}

if [ -x "$py" ] && check && check_duckdb && check_datasketches; then
  echo "$py"
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup-pyreader: $python not found" >&2
  exit 1
fi

mkdir -p "$(dirname "$venv")"
# A venv left half-made by an interrupted run is rebuilt from scratch.
if [ -d "$venv" ] && [ ! -x "$py" ]; then
  rm -rf "$venv"
fi
if [ ! -x "$py" ]; then
  "$python" -m venv "$venv" >&2
fi
# Bounded retries and timeouts, so that a machine without network fails in seconds, not minutes.
pip_install() {
  "$py" -m pip install --disable-pip-version-check --quiet --retries 1 --timeout 20 "$@" >&2
}
if ! check; then
  pip_install deltalake pyarrow || true
  if ! check; then
    echo "setup-pyreader: $venv was created but cannot import deltalake and pyarrow" >&2
    exit 1
  fi
fi
if ! check_duckdb; then
  pip_install duckdb || true
  check_duckdb || echo "setup-pyreader: warning: $venv cannot import duckdb" >&2
fi
if ! check_datasketches; then
  pip_install datasketches || true
  check_datasketches || echo "setup-pyreader: warning: $venv cannot import datasketches" >&2
fi
echo "$py"
