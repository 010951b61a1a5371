#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 300) each, one after the other, on one core.
# Usage (from anywhere): fuzz/run-all.sh [SECONDS] [TARGET...]
# Logs go to fuzz/logs/<target>.log; new inputs to fuzz/corpus/<target>/, crashes to fuzz/artifacts/.
# The targets are built once up front and the binaries run directly (what `cargo fuzz run` does),
# so edits to src/ made while the series runs neither rebuild nor break it halfway.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(pack_header index_segment tree snapshot key_file config envelope blob seal export_archive)
fi
mkdir -p fuzz/logs
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo +nightly fuzz build
bin=fuzz/target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
  case "$t" in
    tree | snapshot | key_file | config) dict=fuzz/dicts/json.dict ;;
    *) dict=fuzz/dicts/binary.dict ;;
  esac
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t for ${secs}s"
  "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$secs" -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 \
    "fuzz/corpus/$t" "fuzz/seeds/$t" \
    >"fuzz/logs/$t.log" 2>&1 || { echo "$t FAILED (see fuzz/logs/$t.log)"; continue; }
  grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1
done
