#!/usr/bin/env bash
# Builds the pinned Django environment the adoption tests drive: a virtualenv at
# target/django-venv (or $1) from tests/django/requirements.txt (or $2). Does nothing when it
# already holds exactly those pins.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../target/django-venv}"
requirements="${2:-$here/requirements.txt}"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
rm -rf "$venv"
if ! python3 -m venv "$venv" 2>/dev/null; then
  # Debian's python3 needs its venv module as a package.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
"$venv/bin/pip" check
cp "$requirements" "$stamp"
