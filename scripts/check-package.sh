#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh) and checks it: lintian reports no errors,
# and the package holds exactly the files listed in tests/package-files.txt (regenerate
# that list with KITHD_BLESS=1 after adding a file on purpose). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(./scripts/package.sh --lintian | tail -n 1)
actual=$(dpkg-deb -c "$deb" | awk '{print $1, $6}' | grep -v '^d' | sed 's| \./| /|' | sort)
if [ "${KITHD_BLESS:-}" = 1 ]; then
    printf '%s\n' "$actual" > tests/package-files.txt
fi
if ! diff -u tests/package-files.txt <(printf '%s\n' "$actual"); then
    echo "the package's files differ from tests/package-files.txt (above)" >&2
    exit 1
fi
echo "package ok: $deb"
