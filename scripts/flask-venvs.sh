#!/usr/bin/env bash
# Creates the two Python environments of the Flask reference apps that the Flask interop
# tests drive (crates/satchel-cli/tests/flask/), each with its pinned requirements:
#
#   fs08/     Flask-Session 0.8 (app.py)                 requirements-0.8.txt
#   legacy/   Flask Unchained 0.9.0, Flask-Session 0.6   requirements-legacy.txt
#             (app_legacy.py)
#
# under ${SATCHEL_FLASK_VENVS:-$HOME/.cache/satchel/flask-venvs}. Idempotent: a venv whose
# stamp matches its requirements file (and python3's version) is reused as it is; any
# other is built afresh. Installs Debian's python3-venv when `python3 -m venv` cannot work.
# scripts/services.sh runs it and exports SATCHEL_TEST_FLASK / SATCHEL_TEST_FLASK_LEGACY.
#
#   scripts/flask-venvs.sh        # create or reuse; prints the two interpreters' paths
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apps="$root/crates/satchel-cli/tests/flask"
venvs="${SATCHEL_FLASK_VENVS:-$HOME/.cache/satchel/flask-venvs}"
run=/tmp/satchel-services
mkdir -p "$run"
log="$run/services.log"

_say() { printf '[flask-venvs] %s\n' "$*" >&2; }

# `python3 -m venv` needs the venv module and ensurepip; Debian ships both in python3-venv.
_venv_ready() { python3 -c 'import venv, ensurepip' 2>/dev/null; }
if ! _venv_ready; then
  _say "installing python3-venv (Debian)"
  (apt-get update -qq && apt-get install -y -qq python3-venv) >>"$log" 2>&1 \
    || { _say "python3-venv install failed (see $log)"; exit 1; }
  _venv_ready || { _say "python3 -m venv still unavailable after installing python3-venv"; exit 1; }
fi

# What a venv was built from: its requirements file and the interpreter behind it.
python="$(python3 -VV)"
_stamp() { { sha256sum <"$1"; printf '%s\n' "$python"; } | sha256sum | cut -d' ' -f1; }

_venv() { # name requirements-file
  local dir="$venvs/$1" req="$apps/$2" stamp
  stamp="$(_stamp "$req")"
  if [[ -f "$dir/.satchel-stamp" && "$(cat "$dir/.satchel-stamp")" == "$stamp" ]] \
    && "$dir/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  _say "creating $dir from $2 (PyPI)"
  rm -rf "$dir"
  mkdir -p "$venvs" 2>>"$log" || { _say "cannot create $venvs (see $log)"; return 1; }
  python3 -m venv "$dir" >>"$log" 2>&1 || { _say "python3 -m venv $dir failed (see $log)"; return 1; }
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >>"$log" 2>&1 \
    || { _say "installing $2 into $dir failed (see $log)"; return 1; }
  # Written last: an interrupted or failed install is built again next time.
  printf '%s\n' "$stamp" >"$dir/.satchel-stamp"
}

_venv fs08 requirements-0.8.txt
_venv legacy requirements-legacy.txt
printf '%s\n' "$venvs/fs08/bin/python" "$venvs/legacy/bin/python"
