#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 300) each, one after the other, on one core.
# Usage (from anywhere): fuzz/run-all.sh [SECONDS] [TARGET...]
# Logs go to fuzz/logs/<target>.log; new inputs to fuzz/corpus/<target>/, crashes to fuzz/artifacts/.
# After each run the corpus is minimized (libFuzzer's -merge=1: the smallest set of inputs with the
# same coverage) and replaces fuzz/corpus/<target>/, which is committed: the next campaign starts
# where this one stopped.
# The targets are built once up front and the binaries run directly (what `cargo fuzz run` does),
# so edits to src/ made while the series runs neither rebuild nor break it halfway.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(pack_header index_segment tree snapshot key_file config envelope blob seal export_archive gateway_restore)
fi
mkdir -p fuzz/logs
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo +nightly fuzz build
bin=fuzz/target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
  case "$t" in
    tree | snapshot | key_file | config | gateway_restore) dict=fuzz/dicts/json.dict ;;
    *) dict=fuzz/dicts/binary.dict ;;
  esac
  # A gateway backup's parts can be large; inputs past 64 KiB are slow to run and to keep.
  max_len=()
  [ "$t" = gateway_restore ] && max_len=(-max_len=65536)
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t for ${secs}s"
  "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$secs" -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 "${max_len[@]}" \
    "fuzz/corpus/$t" "fuzz/seeds/$t" \
    >"fuzz/logs/$t.log" 2>&1 || { echo "$t FAILED (see fuzz/logs/$t.log)"; continue; }
  grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1
  rm -rf "fuzz/corpus/$t.min" && mkdir -p "fuzz/corpus/$t.min"
  "$bin/$t" -merge=1 -rss_limit_mb=2048 "fuzz/corpus/$t.min" "fuzz/corpus/$t" >"fuzz/logs/$t.merge.log" 2>&1
  rm -rf "fuzz/corpus/$t" && mv "fuzz/corpus/$t.min" "fuzz/corpus/$t"
  [ "$t" = gateway_restore ] && find "fuzz/corpus/$t" -type f -size +64k -delete
  echo "$t corpus minimized: $(ls "fuzz/corpus/$t" | wc -l) inputs, $(du -sh "fuzz/corpus/$t" | cut -f1)"
done
