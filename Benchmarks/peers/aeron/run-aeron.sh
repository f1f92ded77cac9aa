#!/usr/bin/env bash
# run-aeron.sh - ONE round of the Aeron (C media driver + C samples) IPC peer benchmark.
#
# Binaries: Aeron 1.47.3 (commit 73548bbd82514a7e1a654adad9da9b5ab9705c04), built Release
# in a build directory outside this repository (see README.md); AERON_BIN=<its binaries/ dir>.
#
# Steps:
#   1. aeronmd, SHARED threading, shared idle strategy "backoff", dir /dev/shm/aeron-bench,
#      AERON_TERM_BUFFER_SPARSE_FILE=0, AERON_PRE_TOUCH_MAPPED_MEMORY=1 (the C driver has no such
#      setting; its C-client equivalent AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY=1 is set for the samples).
#   2. throughput at 64 B and 4096 B: rate_subscriber (aeron:ipc, stream 1001) + streaming_publisher
#      -L <size>; the first subscriber report that has seen traffic is a partial interval and is
#      skipped as warm-up; the next 5 one-second reports are averaged (min/max printed too).
#      The samples print rates with 4 significant digits (%.04g). MB/s = msgs/s * size / 1e6.
#   2b. (CHECKED=1, the default; CHECKED=0 skips it) checked throughput at 64 B and 4096 B:
#      checked_subscriber + checked_publisher from this directory (`make`; override with
#      CHECKED_BIN). The publisher writes the message index as a little-endian u64 into the first
#      8 bytes of its buffer before each offer; the subscriber memcpy's every (reassembled) message into
#      its own buffer and checks that sequence number. Its reporter prints "rate <msgs/s> msgs/s
#      <MB/s> MB/s" each second (full precision); the first report that has seen traffic is skipped as
#      warm-up, the next 5 are averaged, the subscriber then exits by itself (-d 5) and prints
#      "checked <n> messages, <k> out of sequence"; the publisher (-m 1e12) is then stopped.
#      A non-zero out-of-sequence count fails the run (after its line is printed).
#   3. ping-pong 64 B RTT: cpong + cping over aeron:ipc (ping stream 1002, pong stream 1003),
#      PING_WARMUP (default 50000) warm-up and PING_MSGS (default 300000) measured round trips.
#      Percentiles are read from cping's HdrHistogram table (ns recorded, printed in us): pXX is the
#      value of the first table row whose cumulative count >= XX% of the total (HdrHistogram
#      semantics, exact or a slight over-estimate within the table's resolution).
#   4. stop everything, remove /dev/shm/aeron-bench (also done by the EXIT trap on any failure).
set -u -o pipefail

BIN=${AERON_BIN:?set AERON_BIN to the binaries/ directory of an Aeron build (see README.md)}
BENCH_DIR=/dev/shm/aeron-bench
CHANNEL=aeron:ipc
STREAM=1001
PING_MSGS=${PING_MSGS:-300000}
PING_WARMUP=${PING_WARMUP:-50000}
CHECKED=${CHECKED:-1}
CHECKED_BIN=${CHECKED_BIN:-$(cd "$(dirname "$0")" && pwd)}
REPORTS=5
STEP_TIMEOUT_S=${STEP_TIMEOUT_S:-60}

START_NS=$(date +%s%N)
WORK=$(mktemp -d /tmp/run-aeron.XXXXXX)
PIDS=()

log() { echo "run-aeron: $*" >&2; }

stop_pid() {   # stop_pid PID [grace_seconds]: SIGINT, wait, then SIGKILL; reap.
    local pid=$1 grace=${2:-5} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -INT "$pid" 2>/dev/null
    for ((i = 0; i < grace * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIGINT, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

forget_pid() {
    local pid=$1 p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM HUP
    # clients first (newest first), the driver (oldest) last
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}" 5; done
    rm -rf "$BENCH_DIR"
    if [[ $rc -ne 0 ]]; then
        log "FAILED (exit $rc); logs follow"
        for f in "$WORK"/*.log; do [[ -e $f ]] && { echo "---- $f" >&2; tail -n 40 "$f" >&2; }; done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() { log "$*"; exit 1; }

wait_for_line() {   # wait_for_line FILE REGEX PID TIMEOUT_S
    local file=$1 re=$2 pid=$3 t=$4 i
    for ((i = 0; i < t * 20; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "process $pid exited while waiting for '$re' in $file"
        sleep 0.05
    done
    die "timeout waiting for '$re' in $file"
}

for b in aeronmd rate_subscriber streaming_publisher cping cpong; do
    [[ -x $BIN/$b ]] || die "missing $BIN/$b"
done
if [[ $CHECKED == 1 ]]; then
    for b in checked_publisher checked_subscriber; do
        [[ -x $CHECKED_BIN/$b ]] || die "missing $CHECKED_BIN/$b (build with make -C $CHECKED_BIN)"
    done
fi

# ---------- common environment (driver reads the AERON_* driver vars, clients read AERON_DIR etc.)
export AERON_DIR=$BENCH_DIR
export AERON_THREADING_MODE=SHARED
export AERON_SHARED_IDLE_STRATEGY=backoff
export AERON_TERM_BUFFER_SPARSE_FILE=0
export AERON_PRE_TOUCH_MAPPED_MEMORY=1
export AERON_CLIENT_PRE_TOUCH_MAPPED_MEMORY=1
export AERON_DIR_DELETE_ON_START=1
export AERON_DIR_DELETE_ON_SHUTDOWN=1

VERSION=$("$BIN/aeronmd" -v 2>/dev/null | sed -n 's/.*<\(.*\)>.*/\1/p' | head -n 1)

echo "== Aeron IPC benchmark  $(date -Iseconds)  host=vm cpus=$(nproc)"
echo "== aeron: ${VERSION:-unknown} (aeronmd -v)"
echo "== driver: SHARED threading, shared idle strategy=backoff, dir=$BENCH_DIR, channel=$CHANNEL"

# ---------- 1. driver
if [[ -e $BENCH_DIR ]]; then
    log "removing stale $BENCH_DIR"
    rm -rf "$BENCH_DIR"
fi
stdbuf -oL -eL "$BIN/aeronmd" >"$WORK/driver.log" 2>&1 &
DRIVER=$!
PIDS+=("$DRIVER")
for ((i = 0; i < 200; i++)); do
    [[ -s $BENCH_DIR/cnc.dat ]] && break
    kill -0 "$DRIVER" 2>/dev/null || die "aeronmd exited during start-up"
    sleep 0.05
done
[[ -s $BENCH_DIR/cnc.dat ]] || die "aeronmd did not create $BENCH_DIR/cnc.dat within 10 s"
sleep 0.2
kill -0 "$DRIVER" 2>/dev/null || die "aeronmd exited during start-up"

# ---------- 2. throughput
throughput() {
    local size=$1 sub pub slog="$WORK/sub-$1.log" plog="$WORK/pub-$1.log" i n
    stdbuf -oL -eL "$BIN/rate_subscriber" -p "$BENCH_DIR" -c "$CHANNEL" -s "$STREAM" >"$slog" 2>&1 &
    sub=$!
    PIDS+=("$sub")
    wait_for_line "$slog" '^Subscription channel status' "$sub" 10
    stdbuf -oL -eL "$BIN/streaming_publisher" -p "$BENCH_DIR" -c "$CHANNEL" -s "$STREAM" \
        -L "$size" -m 1000000000000 >"$plog" 2>&1 &
    pub=$!
    PIDS+=("$pub")
    # report line: "1000ms, 1.234e+07 msgs/sec, 7.898e+08 bytes/sec, totals 12345 messages 753 MB payloads"
    for ((i = 0; i < STEP_TIMEOUT_S * 10; i++)); do
        n=$(awk '$3 == "msgs/sec," && $6 == "totals" && $7 > 0' "$slog" | wc -l)
        ((n >= REPORTS + 1)) && break
        kill -0 "$pub" 2>/dev/null || die "streaming_publisher ($size B) exited early"
        kill -0 "$sub" 2>/dev/null || die "rate_subscriber ($size B) exited early"
        sleep 0.1
    done
    ((n >= REPORTS + 1)) || die "only $n subscriber reports with traffic after ${STEP_TIMEOUT_S}s ($size B)"
    stop_pid "$pub" 10; forget_pid "$pub"
    stop_pid "$sub" 10; forget_pid "$sub"
    awk -v size="$size" -v want="$REPORTS" '
        $3 == "msgs/sec," && $6 == "totals" && $7 > 0 {
            seen++
            if (seen == 1 || seen > want + 1) next      # first one = partial interval / warm-up
            r = $2 + 0; sum += r; k++
            if (k == 1 || r < mn) mn = r
            if (k == 1 || r > mx) mx = r
        }
        END {
            mean = sum / k
            printf "throughput %5d B: %.0f msgs/s  (%.1f MB/s payload; %d x 1 s reports, min %.0f max %.0f)\n",
                size, mean, mean * size / 1e6, k, mn, mx
        }' "$slog"
}

throughput 64 || exit 1
throughput 4096 || exit 1

# ---------- 2b. checked throughput (receiver copies every message out and checks its sequence number)
checked_throughput() {
    local size=$1 sub pub slog="$WORK/csub-$1.log" plog="$WORK/cpub-$1.log" i sub_rc oos
    stdbuf -oL -eL "$CHECKED_BIN/checked_subscriber" -p "$BENCH_DIR" -c "$CHANNEL" -s "$STREAM" \
        -L "$size" -d "$REPORTS" >"$slog" 2>&1 &
    sub=$!
    PIDS+=("$sub")
    wait_for_line "$slog" '^Subscription ready' "$sub" 10
    stdbuf -oL -eL "$CHECKED_BIN/checked_publisher" -p "$BENCH_DIR" -c "$CHANNEL" -s "$STREAM" \
        -L "$size" -m 1000000000000 >"$plog" 2>&1 &
    pub=$!
    PIDS+=("$pub")
    # the subscriber exits by itself after the warm-up report + $REPORTS full reports
    for ((i = 0; i < STEP_TIMEOUT_S * 20; i++)); do
        kill -0 "$sub" 2>/dev/null || break
        kill -0 "$pub" 2>/dev/null || die "checked_publisher ($size B) exited early"
        sleep 0.05
    done
    kill -0 "$sub" 2>/dev/null && die "checked_subscriber ($size B) did not finish within ${STEP_TIMEOUT_S}s"
    wait "$sub"; sub_rc=$?
    forget_pid "$sub"
    stop_pid "$pub" 10; forget_pid "$pub"
    oos=$(awk '$1 == "checked" && $3 == "messages," && $5 == "out" { print $4 }' "$slog")
    [[ $oos =~ ^[0-9]+$ ]] || die "checked_subscriber ($size B) printed no 'checked' line (exit $sub_rc)"
    # report line: "rate 12345678 msgs/s 790.12 MB/s"
    awk -v size="$size" -v want="$REPORTS" -v oos="$oos" '
        $1 == "rate" && $3 == "msgs/s" && $5 == "MB/s" {
            if (!started && $2 > 0) started = 1
            if (!started) next
            seen++
            if (seen == 1 || seen > want + 1) next      # first one = partial interval / warm-up
            r = $2 + 0; sum += r; k++
            if (k == 1 || r < mn) mn = r
            if (k == 1 || r > mx) mx = r
        }
        END {
            if (k < want) { printf "only %d checked reports with traffic (%d B)\n", k, size > "/dev/stderr"; exit 1 }
            mean = sum / k
            printf "checked throughput %5d B: %.0f msgs/s  (%.1f MB/s payload; %d x 1 s reports, min %.0f max %.0f; %d out of sequence)\n",
                size, mean, mean * size / 1e6, k, mn, mx, oos
        }' "$slog" || die "not enough checked reports ($size B)"
    ((oos == 0 && sub_rc == 0)) || die "checked_subscriber ($size B): $oos out of sequence, exit $sub_rc"
}

if [[ $CHECKED == 1 ]]; then
    checked_throughput 64 || exit 1
    checked_throughput 4096 || exit 1
fi

# ---------- 3. ping-pong
stdbuf -oL -eL "$BIN/cpong" -p "$BENCH_DIR" -c "$CHANNEL" -C "$CHANNEL" >"$WORK/pong.log" 2>&1 &
PONG=$!
PIDS+=("$PONG")
wait_for_line "$WORK/pong.log" '^Publication channel status' "$PONG" 10
stdbuf -oL -eL "$BIN/cping" -p "$BENCH_DIR" -c "$CHANNEL" -C "$CHANNEL" -L 64 \
    -m "$PING_MSGS" -w "$PING_WARMUP" >"$WORK/ping.log" 2>&1 &
PING=$!
PIDS+=("$PING")
for ((i = 0; i < STEP_TIMEOUT_S * 20; i++)); do
    kill -0 "$PING" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$PING" 2>/dev/null && die "cping did not finish within ${STEP_TIMEOUT_S}s"
wait "$PING"; PING_RC=$?
forget_pid "$PING"
[[ $PING_RC -eq 0 ]] || die "cping exited with $PING_RC"
stop_pid "$PONG" 10; forget_pid "$PONG"

awk '
    /^#\[Mean/  { gsub(/[],]/, " "); mean = $3 }
    /^#\[Max/   { gsub(/[],]/, " "); max = $3; total = $7 }
    !/^#/ && NF == 4 && $1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $3 ~ /^[0-9]+$/ { v[n] = $1; c[n] = $3; n++ }
    function pct(k,   i) {   # k in thousandths: first row with cumulative count >= k/1000 of total
        for (i = 0; i < n; i++) if (c[i] * 1000 >= k * total) return v[i]
        return "nan"
    }
    END {
        if (n == 0 || total == 0) { print "no HdrHistogram output from cping" > "/dev/stderr"; exit 1 }
        printf "ping-pong 64 B RTT: p50 %.3f us  p99 %.3f us  p99.9 %.3f us  mean %.3f us  max %.3f us  (%d round trips)\n",
            pct(500), pct(990), pct(999), mean, max, total
    }' "$WORK/ping.log" || exit 1

# ---------- 4. driver stop + cleanup
stop_pid "$DRIVER" 10; forget_pid "$DRIVER"
rm -rf "$BENCH_DIR"
[[ -e $BENCH_DIR ]] && die "$BENCH_DIR still present"

END_NS=$(date +%s%N)
awk -v a="$START_NS" -v b="$END_NS" 'BEGIN { printf "== elapsed %.1f s\n", (b - a) / 1e9 }'
