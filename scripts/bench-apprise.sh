#!/usr/bin/env bash
# The burst benchmark beside Apprise: installs Apprise from PyPI (pip's own configuration)
# into a temporary virtualenv, then runs `cargo bench --bench daemon -- burst`, which sends
# the same number of notifications through Apprise in-process (json://, one after another as
# its API does) to the same loopback sink and prints kithd's ratio to it and to a plain
# reqwest loop. Needs python3 with venv (Debian: python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/apprise"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet apprise
BENCH_APPRISE_PYTHON="$venv/bin/python" cargo bench --bench daemon -- burst
