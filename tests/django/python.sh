#!/usr/bin/env bash
# Prints the path of a CPython 3.13 interpreter for the Django 6.1 virtualenv, building it first
# when target/python-3.13 does not hold it.
#
# Django 6.x needs Python 3.12 or newer; Debian 12 ships 3.11, and the machines CI runs on reach
# package registries only. Debian's archive is one of them: trixie's python3.13 source package
# carries CPython's release tarball as its `orig` file, fetched here by URL, checked against the
# sha256 pinned below, and built into target/ (no system file is touched; 2 min 50 s of CPU,
# 7 minutes beside a cargo build on two cores). Nothing is downloaded once it is built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=3.13.5
sha256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
url="http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_${version}.orig.tar.xz"
prefix="$(cd "$here/../.." && pwd)/target/python-$version"
python="$prefix/bin/python3.13"
if [ -x "$python" ] && "$python" -c 'import ssl, venv, ensurepip' 2>/dev/null; then
  echo "$python"
  exit 0
fi

# The headers the modules pip needs are built from (ssl, zlib, ctypes).
missing=()
for package in gcc make libssl-dev zlib1g-dev libffi-dev; do
  dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -fsS --retry 3 -o "$work/python.tar.xz" "$url"
echo "$sha256  $work/python.tar.xz" | sha256sum --check --quiet -
tar -xJf "$work/python.tar.xz" -C "$work"
(
  cd "$work/Python-$version"
  # No profile-guided build: the tests only run manage.py. The build's output goes to a log,
  # shown when a step fails.
  if ! { ./configure --prefix="$prefix" --without-ensurepip \
    && make -j"$(nproc)" && make install; } >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    exit 1
  fi
) >&2
"$python" -c 'import ssl, venv, ensurepip' >&2
echo "$python"
