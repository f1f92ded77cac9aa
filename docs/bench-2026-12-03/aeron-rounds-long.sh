#!/usr/bin/env bash
# Ten short rounds against Aeron (2026-12-03 evening): the 64 B stream with 32 MiB rings and the
# spinning 64 B round trip in ringbench, then one Aeron round (run-aeron.sh, default 64 MiB term).
# The host switches between a fast and a slow mode every few seconds; ten rounds leave enough
# rounds in which ringbench's probes and Aeron's own round trip say both ran in the fast mode.
#   AERON_BIN=<aeron build>/binaries RB=.build/release/ringbench OUT=/tmp/sameday-long bash docs/bench-2026-12-03/aeron-rounds-long.sh
RB=${RB:-.build/release/ringbench}
out=${OUT:-/tmp/sameday-long}; rm -rf "$out"; mkdir -p "$out"
aeron=${AERON_RUN:-Benchmarks/peers/aeron/run-aeron.sh}
for r in $(seq 1 10); do
  uptime > "$out/load-$r.txt"
  $RB throughput --transport shm --transport c-ring \
      --size 64 --capacity 262144 --duration 1 --format json > "$out/thrbig64-$r.json" 2>>"$out/err.txt"
  $RB latency --transport shm --transport c-spin --transport c-ring \
      --size 64 --strategy spin --format json > "$out/lat-spin-$r.json" 2>>"$out/err.txt"
  PING_MSGS=300000 PING_WARMUP=50000 bash "$aeron" > "$out/aeron-$r.txt" 2>&1
  uptime >> "$out/load-$r.txt"
done
echo done > "$out/DONE"
