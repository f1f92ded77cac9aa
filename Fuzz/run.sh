#!/usr/bin/env bash
# Runs the ShmMailbox libFuzzer target for a bounded time and fails on any finding (crash, Swift
# trap, ASan report, leak, timeout, out-of-memory).
#
#   bash Fuzz/run.sh [SECONDS] [libFuzzer flags...]     # default 60 s
#
# Environment:
#   FUZZ_RUNS=N        also stop after N inputs
#   FUZZ_CORPUS=DIR    keep the evolving corpus in DIR (created if missing) instead of a
#                      temporary directory; the seeds are always regenerated
#   FUZZ_JOBS=N        run N workers (libFuzzer -fork=N)
#   FUZZ_SANITIZERS=.. passed to Fuzz/build.sh (default fuzzer,address)
#
# Builds if needed (Fuzz/build.sh), writes the seed corpus (fuzz-mailbox --make-corpus) to a
# temporary directory, and removes every shared-memory object its processes made afterwards.
# Reproducers of findings are kept in .build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[ $# -gt 0 ] && shift
case "$seconds" in
    ''|*[!0-9]*) echo "usage: bash Fuzz/run.sh [SECONDS] [libFuzzer flags...]" >&2; exit 2 ;;
esac

bash Fuzz/build.sh

# Every object the fuzzer makes is named <tag>-<pid>... (see FuzzMailbox.swift).
tag="fuzzrun-$$"
work="$(mktemp -d /tmp/shmmb-fuzz.XXXXXX)"
cleanup() {
    rm -f /dev/shm/shmmb."$tag"-* /dev/shm/shmmb.@"$tag"-* /dev/shm/shmmb.@*">$tag"-*
    rm -rf "$work"
}
trap cleanup EXIT

export SHMMB_FUZZ_TAG="$tag"
.build-fuzz/fuzz-mailbox --make-corpus "$work/seeds"

corpus="${FUZZ_CORPUS:-$work/corpus}"
mkdir -p "$corpus" .build-fuzz/artifacts

args=(
    -max_total_time="$seconds"
    -timeout=2
    -rss_limit_mb=2048
    -malloc_limit_mb=1024
    -max_len=36864
    -dict=Fuzz/mailbox.dict
    -artifact_prefix=.build-fuzz/artifacts/
    -print_final_stats=1
)
[ -n "${FUZZ_RUNS:-}" ] && args+=(-runs="$FUZZ_RUNS")
[ -n "${FUZZ_JOBS:-}" ] && args+=(-fork="$FUZZ_JOBS")

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
# Swift's own crash backtracer would take the trap's signal before libFuzzer (and, under ASan,
# report its own memory reads): let libFuzzer handle it, print the stack and save the input.
export SWIFT_BACKTRACE=enable=no
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-/opt/swift/usr/bin/llvm-symbolizer}"

# Op 14's oracle (a bad link next to a good one) is on: finding 1 is fixed.
export SHMMB_FUZZ_HOSTILE_LINKS="${SHMMB_FUZZ_HOSTILE_LINKS:-1}"
# Earlier findings first, as regression inputs (each must now run clean).
.build-fuzz/fuzz-mailbox Fuzz/findings/*.bin

echo "fuzzing for ${seconds}s (corpus $corpus, tag $tag)"
status=0
# The first directory receives new inputs; the seeds are read only.
.build-fuzz/fuzz-mailbox "${args[@]}" "$@" "$corpus" "$work/seeds" || status=$?

left=$(ls /dev/shm | grep -E "^shmmb\.@?$tag-|>$tag-" || true)
if [ -n "$left" ]; then
    echo "note: removing objects the run left in /dev/shm:" $left
fi
if [ "$status" -eq 72 ]; then
    echo "fuzzing was interrupted (libFuzzer exit status 72)" >&2
    exit "$status"
fi
if [ "$status" -ne 0 ]; then
    echo "FUZZING FOUND A PROBLEM (libFuzzer exit status $status); reproducer in .build-fuzz/artifacts/:" >&2
    ls -t .build-fuzz/artifacts/ | head -5 >&2
    echo "reproduce: SHMMB_FUZZ_DEBUG=1 .build-fuzz/fuzz-mailbox .build-fuzz/artifacts/<file>" >&2
    exit "$status"
fi
echo "fuzzing: no findings"
