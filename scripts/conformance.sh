#!/usr/bin/env bash
# Optional conformance check (not part of the test suite): the `twilio` plugin's request,
# sent by `kithd send-test`, validated by Stoplight Prism against Twilio's published OpenAPI
# file (../shared/specs/twilio_messages_only.json when present, or SPEC=path). Prism answers
# 201 only to a request that matches the spec (path, form fields, basic auth).
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${SPEC:-../shared/specs/twilio_messages_only.json}"
[ -f "$spec" ] || { echo "no spec at $spec; set SPEC=path/to/twilio_messages_only.json"; exit 0; }
work="$(mktemp -d)"
trap 'kill "${prism_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent @stoplight/prism-cli@5.14.2 >/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/node_modules/.bin/prism" mock -h 127.0.0.1 -p "$port" "$spec" > "$work/prism.log" 2>&1 &
prism_pid=$!
for _ in $(seq 50); do grep -q "Prism is listening" "$work/prism.log" && break; sleep 0.2; done
cargo build --quiet --locked
mkdir -p "$work/plugins"
cat > "$work/plan.toml" <<PLAN
[person]
name = "Alex"
timezone = "Europe/Berlin"
phone = "+4915100000001"
reach = ["sms"]

[channels.sms]
plugin = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = { secret = "twilio_token" }
from = "+15005550006"
api_base = "http://127.0.0.1:$port"
PLAN
KITHD_SECRET_TWILIO_TOKEN=not-a-real-token target/debug/kithd send-test "$work/plan.toml" --plugins "$work/plugins" --channel sms --to self
grep -q "The request passed the validation rules" "$work/prism.log" && echo "twilio: the request conforms to Twilio's OpenAPI description"
