#!/usr/bin/env bash
# The gateways' own Python SDKs (twilio, vonage from PyPI) in a virtualenv of their own, for
# the tests that sign inbound replies the way Twilio and Vonage do. Created once in
# target/gateway-venv (or $1) with pip's own configuration; prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-target/gateway-venv}"
if ! "$venv/bin/python" -c 'import twilio.request_validator, vonage_http_client' 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'twilio>=9,<10' 'vonage>=4,<5' >&2
fi
echo "$(cd "$venv" && pwd)/bin/python"
