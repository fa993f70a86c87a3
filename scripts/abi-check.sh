#!/bin/sh
# Compares the version and flags that modules built with KAMAILIO_CDEFS carry with those of the
# installed kamailio binary; Kamailio refuses to load a module when they differ.
# usage: abi-check.sh <kamailio src dir> <cdefs.mk> <out stamp>
set -eu
SRC=$1; CDEFS=$2; STAMP=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
defs=$(sed -n 's/^KAMAILIO_CDEFS := //p' "$CDEFS")
eval "cc $defs -I'$SRC/src' -o '$tmp/abi' '$(dirname "$0")/abi-check.c'"
"$tmp/abi" | sed 's/ *$//' > "$tmp/ours"
kamailio -V | sed -n '1,2p' | sed 's/^Version:/version:/; s/ *$//' > "$tmp/theirs"
if ! cmp -s "$tmp/ours" "$tmp/theirs"; then
    echo "ERROR: the modules would not match the installed Kamailio binary." >&2
    echo "  installed (kamailio -V):" >&2; sed 's/^/    /' "$tmp/theirs" >&2
    echo "  modules would carry:" >&2;     sed 's/^/    /' "$tmp/ours" >&2
    echo "  Install the kamailio package and its source of the same version ('make distclean deps')." >&2
    exit 1
fi
cp "$tmp/ours" "$STAMP"
