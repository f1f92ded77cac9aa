#!/usr/bin/env bash
# Same-day rounds against Aeron (2026-12-03 evening, after trySendBatch): ringbench cells, then one
# Aeron round (Benchmarks/peers/aeron/run-aeron.sh, its default 64 MiB IPC term), three times, so
# that every ratio compares figures taken a minute or two apart. A trimmed
# docs/bench-2026-12-02/interleaved-rounds.sh (no 1 MiB term, no 64 KiB or block cells).
#   AERON_BIN=<aeron build>/binaries RB=.build/release/ringbench OUT=/tmp/sameday bash docs/bench-2026-12-03/aeron-rounds.sh
RB=${RB:-.build/release/ringbench}
out=${OUT:-/tmp/sameday}; rm -rf "$out"; mkdir -p "$out"
aeron=${AERON_RUN:-Benchmarks/peers/aeron/run-aeron.sh}
for r in 1 2 3; do
  uptime > "$out/load-$r.txt"
  # One-second streams (as Aeron's reports) with ringbench's default rings ...
  $RB throughput --transport shm --transport shm-shared --transport shm-endpoint --transport c-ring \
      --size 64 --size 4096 --duration 1 --format json > "$out/thr-$r.json" 2>>"$out/err.txt"
  # ... and 64 B with rings about as large as Aeron's default publication window (32 MiB).
  $RB throughput --transport shm --transport c-ring \
      --size 64 --capacity 262144 --duration 1 --format json > "$out/thrbig64-$r.json" 2>>"$out/err.txt"
  $RB latency --transport shm --transport c-spin --transport c-ring \
      --size 64 --strategy spin --format json > "$out/lat-spin-$r.json" 2>>"$out/err.txt"
  PING_MSGS=300000 PING_WARMUP=50000 bash "$aeron" > "$out/aeron-$r.txt" 2>&1
  uptime >> "$out/load-$r.txt"
done
echo done > "$out/DONE"
