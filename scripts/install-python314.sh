#!/usr/bin/env bash
# Installs a private CPython 3.14 built by Debian (unstable) into PREFIX and prints its interpreter path.
# Used by scripts/setup.sh only when no python3.14 (>= 3.14.2) is on PATH. Works on Debian 12/13 hosts:
# the interpreter is patched to use its own glibc loader and libraries, so nothing on the host changes.
#   usage: install-python314.sh PREFIX
set -euo pipefail
PREFIX="${1:?usage: install-python314.sh PREFIX}"
PY="$PREFIX/usr/bin/python3.14"
if [ -x "$PY" ] && "$PY" -c 'import ssl, sqlite3, ctypes' 2>/dev/null; then echo "$PY"; exit 0; fi
case "$(uname -m)" in
  x86_64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2 ;;
  aarch64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
  *) echo "unsupported architecture $(uname -m): install Python 3.14 yourself" >&2; exit 1 ;;
esac
command -v patchelf >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq patchelf >/dev/null; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
cat > "$work/parts/unstable.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts"
     -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update -qq >/dev/null
pkgs=(libc6 libgcc-s1 libstdc++6 zlib1g libbz2-1.0 liblzma5 libzstd1 libexpat1 libffi8
      libssl3t64 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8t64 libmpdec4
      libpython3.14-minimal libpython3.14-stdlib libpython3.14 libpython3.14-dev
      python3.14-minimal python3.14 python3.14-venv python3.14-dev
      python3-pip-whl python3-setuptools-whl)
( cd "$work/debs" && apt-get "${APT[@]}" download "${pkgs[@]}" >/dev/null )
rm -rf "$PREFIX.tmp"; mkdir -p "$PREFIX.tmp"
for d in "$work"/debs/*.deb; do dpkg -x "$d" "$PREFIX.tmp"; done
# Debian's pyconfig.h includes a multiarch copy by a path the host compiler cannot see: inline it,
# so C extensions build against this interpreter.
mpc="$PREFIX.tmp/usr/include/$triplet/python3.14/pyconfig.h"
[ -f "$mpc" ] && cp "$mpc" "$PREFIX.tmp/usr/include/python3.14/pyconfig.h"
LIB="$PREFIX/usr/lib/$triplet"
patchelf --set-interpreter "$LIB/$loader" --force-rpath --set-rpath "$LIB" "$PREFIX.tmp/usr/bin/python3.14"
rm -rf "$PREFIX"; mv "$PREFIX.tmp" "$PREFIX"
"$PY" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, uuid' >/dev/null
echo "$PY"
