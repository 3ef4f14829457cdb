#!/usr/bin/env bash
# Builds the pinned Django environment the adoption tests drive: a virtualenv at
# target/django-venv (or $1) from tests/django/requirements.txt (or $2). Does nothing when it
# already holds exactly those pins. A requirements file whose first lines say `# python: 3.13`
# gets the CPython 3.13 that tests/django/python.sh builds (Django 6.1 needs 3.12 or newer);
# the others get the machine's python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../target/django-venv}"
requirements="${2:-$here/requirements.txt}"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
rm -rf "$venv"
if grep -q '^# python: 3.13$' "$requirements"; then
  python="$(bash "$here/python.sh")"
  "$python" -m venv "$venv"
elif ! python3 -m venv "$venv" 2>/dev/null; then
  # Debian's python3 needs its venv module as a package.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
"$venv/bin/pip" check
cp "$requirements" "$stamp"
