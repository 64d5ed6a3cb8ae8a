#!/usr/bin/env bash
# Builds the Debian package: target/debian/kithd_<version>-1_amd64.deb. Installs cargo-deb
# (through cargo's own configuration) if it is missing, builds kithd in release mode,
# generates the man pages and shell completions from the binary itself, then packages.
# Usage: scripts/package.sh [--lintian]   (--lintian also runs lintian on the result)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo build --release --locked
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/completions"
target/release/kithd manpages "$assets/man"
target/release/kithd completions bash > "$assets/completions/kithd.bash"
target/release/kithd completions zsh > "$assets/completions/_kithd"
target/release/kithd completions fish > "$assets/completions/kithd.fish"
deb=$(cargo deb --no-build --locked --strip 2>/dev/null | tail -n 1)
if [ "${1:-}" = "--lintian" ]; then
    lintian --fail-on error "$deb" >&2
fi
echo "$deb"
