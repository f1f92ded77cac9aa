#!/usr/bin/env bash
# Line coverage of the library's sources reached by a fuzz corpus: builds the target a second
# time with Swift's source-based coverage (-profile-generate -profile-coverage-mapping, no ASan)
# into .build-fuzz/coverage/, runs every input of the given corpus directories once, and prints
# `llvm-cov report` for Sources/ShmMailbox.
#
#   bash Fuzz/coverage.sh CORPUS_DIR [MORE_DIRS...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash Fuzz/coverage.sh CORPUS_DIR [MORE_DIRS...]" >&2; exit 2; }

export PATH="/opt/swift/usr/bin:$PATH"
out=.build-fuzz/coverage
mkdir -p "$out"
mapfile -t swift_sources < <(find Sources/ShmMailbox -name '*.swift' | sort)
FUZZ_SANITIZERS=fuzzer FUZZ_BINARY="$out/fuzz-mailbox-cov" \
    FUZZ_SWIFTC_FLAGS="-profile-generate -profile-coverage-mapping" bash Fuzz/build.sh --force

rm -f "$out"/*.profraw
tag="fuzzcov-$$"
trap 'rm -f /dev/shm/shmmb."$tag"-* /dev/shm/shmmb.@"$tag"-* /dev/shm/shmmb.@*">$tag"-*' EXIT
# -runs=0 executes each input once; %p keeps one profile per process.
SHMMB_FUZZ_TAG="$tag" SWIFT_BACKTRACE=enable=no LLVM_PROFILE_FILE="$out/run-%p.profraw" \
    "$out/fuzz-mailbox-cov" -runs=0 -timeout=10 "$@" > "$out/run.log" 2>&1
llvm-profdata merge -sparse "$out"/*.profraw -o "$out/merged.profdata"
llvm-cov report "$out/fuzz-mailbox-cov" -instr-profile="$out/merged.profdata" \
    -ignore-filename-regex='Fuzz/|CShim/' "${swift_sources[@]}"
