#!/usr/bin/env bash
# tests/e2e/setup-venv.sh: creates (or updates) the end-to-end suite's venv at
# ${EIM_CACHE_DIR:-$HOME/.cache/exampleim}/venv, outside the tracked tree, with
# the pinned packages of requirements.txt, and prints the venv's python path
# on stdout. Idempotent and silent when the venv already matches
# requirements.txt (a hash of it is kept in the venv). The base interpreter is
# $EIM_PYTHON, else Debian's /usr/bin/python3 (packages python3, python3-venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${EIM_CACHE_DIR:-$HOME/.cache/exampleim}/venv"
req="$here/requirements.txt"
base="${EIM_PYTHON:-}"
if [[ -z "$base" ]]; then
  if [[ -x /usr/bin/python3 ]]; then base=/usr/bin/python3; else base=$(command -v python3); fi
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)

# A venv whose interpreter no longer runs (the base python was upgraded or
# removed) is rebuilt rather than patched.
if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
  mkdir -p "$(dirname "$venv")"
  "$base" -m venv --clear "$venv" >&2
  rm -f "$stamp"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  echo "setup-venv: installing $req into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$req" >&2
  echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
