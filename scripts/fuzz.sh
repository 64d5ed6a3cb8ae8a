#!/usr/bin/env bash
# Bounded fuzz runs of every cargo-fuzz target (plan loader + the check→run property,
# plugin contract decoder, SMS reply parser, answer-token decoder), each from its seed
# corpus in fuzz/corpus/TARGET. New inputs go to a temporary directory, so the repository
# stays clean; a crash leaves its input in fuzz/artifacts/TARGET and fails the run.
#
#   scripts/fuzz.sh                 # 30 s per target (what the test suite runs)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh plan   # an hour on one target
#
# Stable Rust: cargo-fuzz runs with RUSTC_BOOTSTRAP=1 and without a sanitizer.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(plan contract reply token)

cargo fuzz build --sanitizer none
for t in "${targets[@]}"; do
    scratch="$(mktemp -d)"
    echo "fuzz: $t for ${seconds}s"
    set +e
    cargo fuzz run --sanitizer none "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        >"$scratch.log" 2>&1
    status=$?
    set -e
    grep -E '^Done|ERROR|panicked|SUMMARY|Test unit written' "$scratch.log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$scratch.log"
        echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t"
        rm -rf "$scratch" "$scratch.log"
        exit 1
    fi
    rm -rf "$scratch" "$scratch.log"
done
