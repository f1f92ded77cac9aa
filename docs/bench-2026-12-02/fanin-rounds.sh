#!/usr/bin/env bash
# Fan-in, 1 and 4 senders alternating, five rounds: shm (a shared ring), shm-endpoint (a link
# per sender) and c-slots (the C floor of the shared ring's design).
#   RB=.build/release/ringbench OUT=/tmp/fanin bash fanin-rounds.sh
RB=${RB:-.build/release/ringbench}
out=${OUT:-/tmp/fanin}; rm -rf "$out"; mkdir -p "$out"
for r in 1 2 3 4 5; do
  for n in 1 4; do
    $RB fanin --transport shm --transport shm-endpoint --transport c-slots --senders $n --size 64 \
        --duration 1 --format json > "$out/fanin$n-$r.json" 2>>"$out/err.txt"
  done
done
