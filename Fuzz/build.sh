#!/usr/bin/env bash
# Builds the libFuzzer target .build-fuzz/fuzz-mailbox: every Swift file of the ShmMailbox
# library plus Fuzz/*.swift compiled as ONE module named ShmMailbox (so the fuzzer reaches the
# internal API), in release mode WITH overflow checks (-O, never -Ounchecked), instrumented for
# libFuzzer and, by default, AddressSanitizer.
#
#   bash Fuzz/build.sh            # rebuild only if a source is newer than the binary
#   bash Fuzz/build.sh --force    # rebuild
#   FUZZ_SANITIZERS=fuzzer bash Fuzz/build.sh --force   # without ASan (faster, fewer checks)
#   FUZZ_BINARY=PATH FUZZ_SWIFTC_FLAGS="..." bash Fuzz/build.sh --force   # another binary with
#                                                 extra swiftc flags (Fuzz/coverage.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/opt/swift/usr/bin:$PATH"
command -v swiftc >/dev/null || { echo "swiftc not found (expected in /opt/swift/usr/bin)" >&2; exit 1; }

binary="${FUZZ_BINARY:-.build-fuzz/fuzz-mailbox}"
out=$(dirname "$binary")
read -r -a extra_flags <<< "${FUZZ_SWIFTC_FLAGS:-}"
sanitizers="${FUZZ_SANITIZERS:-fuzzer,address}"
mapfile -t swift_sources < <(find Sources/ShmMailbox -name '*.swift' | sort)
fuzz_sources=(Fuzz/FuzzMailbox.swift Fuzz/MakeCorpus.swift)

if [ "${1:-}" != "--force" ] && [ -x "$binary" ] && [ "$(cat "$out/sanitizers" 2>/dev/null)" = "$sanitizers" ] \
   && [ -z "$(find Sources/ShmMailbox CShim Fuzz -newer "$binary" \( -name '*.swift' -o -name '*.c' -o -name '*.h' -o -name build.sh \) -print -quit)" ]; then
    echo "fuzz-mailbox is up to date ($binary)"
    exit 0
fi

mkdir -p "$out/include"
# CShim is a SwiftPM C target without a module map of its own (SwiftPM generates one): make one.
cat > "$out/include/module.modulemap" <<EOF
module CShim {
    header "$PWD/CShim/include/CShim.h"
    export *
}
EOF

clang_sanitizers="${sanitizers//fuzzer/fuzzer-no-link}"
c_objects=()
for source in CShim/*.c; do
    object="$out/$(basename "$source" .c).o"
    clang -O2 -g -fsanitize="$clang_sanitizers" -I CShim/include -c "$source" -o "$object"
    c_objects+=("$object")
done

# -O keeps Swift's overflow, bounds and precondition checks (a failed one traps: SIGILL/SIGTRAP,
# which libFuzzer reports as a deadly signal). -g for symbolised stack traces.
swiftc -O -g -swift-version 6 -parse-as-library -module-name ShmMailbox \
    -sanitize="$sanitizers" -use-ld=lld "${extra_flags[@]}" \
    -I "$out/include" -Xcc -I -Xcc CShim/include \
    "${swift_sources[@]}" "${fuzz_sources[@]}" "${c_objects[@]}" \
    -o "$binary"
echo "$sanitizers" > "$out/sanitizers"
echo "built $binary (sanitizers: $sanitizers)"
