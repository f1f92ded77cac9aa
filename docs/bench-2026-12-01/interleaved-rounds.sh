#!/usr/bin/env bash
# Interleaved rounds: ringbench cells and Aeron, A B A B ..., 3 rounds.
RB=${RB:-.build/release/ringbench}
out=${OUT:-/tmp/sameday}; rm -rf $out; mkdir -p $out
for r in 1 2 3; do
  uptime > $out/load-$r.txt
  $RB throughput --transport shm --transport shm-shared --transport shm-endpoint --transport c-ring --size 64 --size 4096 --format json > $out/thr-$r.json 2>>$out/err.txt
  $RB latency --transport shm --transport shm-shared --transport shm-endpoint --transport c-spin --transport c-ring --size 64 --strategy spin --format json > $out/lat-spin-$r.json 2>>$out/err.txt
  $RB latency --transport shm --transport shm-shared --transport shm-endpoint --size 64 --strategy adaptive --format json > $out/lat-adaptive-$r.json 2>>$out/err.txt
  $RB latency --transport shm --transport c-futex --size 64 --strategy block --format json > $out/lat-block-$r.json 2>>$out/err.txt
  PING_MSGS=300000 PING_WARMUP=50000 bash "${AERON_RUN:-/work/peers/run-aeron.sh}" > $out/aeron-$r.txt 2>&1
done
echo done > $out/DONE
