#!/usr/bin/env bash
# Interleaved rounds: ringbench cells, then Aeron (Benchmarks/peers/aeron/run-aeron.sh; Aeron is built outside this
# repository) with its default 64 MiB IPC term and with a 1 MiB one, three times, so that every
# ratio compares figures taken a minute or two apart at most.
#   AERON_BIN=<aeron build>/binaries RB=.build/release/ringbench OUT=/tmp/sameday bash docs/bench-2026-12-02/interleaved-rounds.sh
RB=${RB:-.build/release/ringbench}
out=${OUT:-/tmp/sameday}; rm -rf "$out"; mkdir -p "$out"
aeron=${AERON_RUN:-Benchmarks/peers/aeron/run-aeron.sh}   # needs AERON_BIN (Benchmarks/peers/aeron/README.md)
for r in 1 2 3; do
  uptime > "$out/load-$r.txt"
  # Streams of one second each (as Aeron's reports), with the default rings (4096 messages of 64 B, 1007 of 4 KiB: about 0.3-4 MiB) ...
  $RB throughput --transport shm --transport shm-shared --transport shm-endpoint --transport c-ring --transport c-slots \
      --size 64 --size 4096 --duration 1 --format json > "$out/thr-$r.json" 2>>"$out/err.txt"
  # ... and with rings about as large as Aeron's default publication window (32 MiB).
  $RB throughput --transport shm --transport shm-shared --transport shm-endpoint --transport c-ring \
      --size 64 --capacity 262144 --duration 1 --format json > "$out/thrbig64-$r.json" 2>>"$out/err.txt"
  $RB throughput --transport shm --transport shm-shared --transport shm-endpoint --transport c-ring \
      --size 4096 --capacity 8192 --duration 1 --format json > "$out/thrbig4k-$r.json" 2>>"$out/err.txt"
  $RB throughput --transport shm --transport c-ring --size 65536 --duration 1 --format json > "$out/thr64k-$r.json" 2>>"$out/err.txt"
  $RB latency --transport shm --transport shm-shared --transport shm-endpoint --transport c-spin --transport c-ring --transport c-slots \
      --size 64 --strategy spin --format json > "$out/lat-spin-$r.json" 2>>"$out/err.txt"
  $RB latency --transport shm --transport shm-shared --transport shm-endpoint --size 64 --strategy adaptive --format json > "$out/lat-adaptive-$r.json" 2>>"$out/err.txt"
  $RB latency --transport shm --transport c-futex --size 64 --strategy block --format json > "$out/lat-block-$r.json" 2>>"$out/err.txt"
  PING_MSGS=300000 PING_WARMUP=50000 bash "$aeron" > "$out/aeron-$r.txt" 2>&1
  AERON_IPC_TERM_BUFFER_LENGTH=1048576 PING_MSGS=300000 PING_WARMUP=50000 bash "$aeron" > "$out/aeronsmall-$r.txt" 2>&1
  uptime >> "$out/load-$r.txt"
done
echo done > "$out/DONE"
