#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages
# for the real SMTP server, faketime, systemd-analyze, openssl, man, lintian, debootstrap,
# systemd-nspawn, python3-venv, postgresql for a private cluster the ledger tests start on
# 127.0.0.1, chromium and npm for the pages' browser test), playwright-core and axe-core
# from npm (tests/browser), and the gateways' Python SDKs (twilio, vonage from PyPI, in a
# virtualenv under target/), then checks formatting and lints, runs every test, builds,
# checks and boots the Debian package, then a bounded fuzz run of every target (30 s each;
# set FUZZ_SECONDS to change it, 0 to skip). CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
/usr/bin/python3 -c 'import icalendar, recurring_ical_events' 2>/dev/null \
    || need+=(python3-icalendar python3-recurring-ical-events)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v openssl >/dev/null || need+=(openssl)
command -v man >/dev/null || need+=(man-db)
command -v lintian >/dev/null || need+=(lintian)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
# jemalloc (the daemon's allocator) is built from source by tikv-jemalloc-sys.
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "Installing test dependencies: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# playwright-core drives Debian's Chromium and axe-core checks the pages
# (tests/browser/pages.mjs), at the versions tests/browser/package-lock.json pins, from npm's
# configured registry.
(cd tests/browser && npm ci --no-audit --no-fund >/dev/null)

# Twilio's and Vonage's SDKs sign the inbound replies the tests post (tests/peers/sign_gateway.py).
./scripts/gateway-venv.sh >/dev/null

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
# The Debian package: built, lintian without errors, exactly the expected files; then
# installed and booted with systemd as PID 1 (systemd-nspawn; the Debian tree is cached in
# /var/tmp between runs). Booting needs root; elsewhere it is skipped, and said so.
./scripts/check-package.sh
if [ "$(id -u)" -eq 0 ]; then
    ./scripts/systemd-boot-check.sh
else
    echo "Skipping the systemd boot check (needs root)."
fi
if [ "${FUZZ_SECONDS:-30}" != 0 ]; then
    ./scripts/fuzz.sh
fi
