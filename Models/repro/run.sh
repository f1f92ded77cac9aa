#!/usr/bin/env bash
# Replays the SPIN models' findings (Models/README.md, "Findings") against the real library.
#
#   bash Models/repro/run.sh
#
# Builds Models/repro/main.swift as an extra executable in a scratch copy of the package (debug,
# so that the crash points SHMMB_CRASH_AT work), then runs each scenario and says whether the
# defect showed. Leaves the repository alone. Needs Swift (PATH, or /opt/swift/usr/bin).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"

work=$(mktemp -d "${TMPDIR:-/tmp}/shmmb-repro.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$root" && tar cf - --exclude=.build --exclude=.git --exclude=Models .) | (cd "$work" && tar xf -)
mkdir -p "$work/Tests/Repro"
cp "$here/main.swift" "$work/Tests/Repro/main.swift"
python3 - "$work/Package.swift" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "    targets: [\n"
assert anchor in text
text = text.replace(anchor, anchor + '        .executableTarget(name: "Repro", dependencies: ["ShmMailbox"], path: "Tests/Repro"),\n', 1)
open(path, "w").write(text)
EOF
echo "building the driver (debug)..."
(cd "$work" && swift build --product Repro >"$work/build.log" 2>&1) || { tail -20 "$work/build.log"; exit 2; }
R="$work/.build/debug/Repro"
name=spin-repro-$$

scenario() { echo; echo "== $1"; "$R" delete "$name" >/dev/null 2>&1 || true; }
kill_at() { # kill_at POINT COMMAND...: runs the driver with a crash point armed
    local point=$1; shift
    SHMMB_CRASH_AT=$point "$R" "$@" 2>/dev/null
    local status=$?
    [ $status = 137 ] && echo "   (killed at $point)"
}
verdict() { if grep -q -- "$2" "$work/out"; then echo "-> $1: REPRODUCED"; else echo "-> $1: not reproduced"; fi; }

scenario "F1 one-to-one: a receiver that takes over twice loses a redelivered mark"
{
    "$R" create "$name" oneToOne 4 64
    "$R" send "$name" m1 m2
    kill_at o2o.receive.before-release:2 receive-batch "$name"   # hands out m1 and m2, releases nothing
    kill_at o2o.receive.after-intent:1 receive "$name" 1          # stores readingUpTo = end of m1, dies
    "$R" receive "$name" 2                                        # m1 marked; m2 must be marked too
} | tee "$work/out"
verdict F1 "^received m2, redelivered: false"

scenario "F2 one-to-one: receiver reports corruption after senders die between stamp and publish"
{
    "$R" create "$name" oneToOne 1 2032           # record 2048 bytes, data area 4096
    "$R" send "$name" a; "$R" receive "$name" 1    # published tail 32
    kill_at o2o.send.after-stamp send "$name" @2032
    "$R" receive "$name" 1
    kill_at o2o.send.after-stamp send "$name" @2032   # takes over, pads, stamps, dies
    "$R" receive "$name" 1
    "$R" try-receive "$name"                       # head 6144, tail hint 32
} | tee "$work/out"
verdict F2 "corrupted"

scenario "F3a shared: one killed sender and five failed zero-copy sends wedge the receivers"
{
    "$R" create "$name" shared 2 64
    kill_at shared.send.after-claim send "$name" x
    "$R" send-fail "$name" 5
    "$R" try-receive "$name"
    "$R" send "$name" hello
    "$R" try-receive "$name"
} | tee "$work/out"
verdict F3a "corrupted"

scenario "F3b shared: no death at all: two processes whose zero-copy fills throw, concurrently"
{
    "$R" create "$name" shared 2 64
    "$R" send-fail "$name" 100000 & "$R" send-fail "$name" 100000 & wait
    "$R" try-receive "$name"
} | tee "$work/out"
verdict F3b "corrupted"

scenario "F3c shared: no death at all: two processes whose synchronous sends time out, concurrently"
{
    "$R" create "$name" shared 2 64
    "$R" send-sync-timeout "$name" 100000 & "$R" send-sync-timeout "$name" 100000 & wait
    "$R" try-receive "$name"
} | tee "$work/out"
verdict F3c "corrupted"

scenario "F5 shared: a message whose sender-side redeliverer died waits for the next send"
{
    "$R" create "$name" shared 2 64
    "$R" send "$name" m0 m1
    kill_at shared.receive.after-take receive "$name" 1     # takes m0, dies
    "$R" receive "$name" 1                                   # m1
    kill_at repair.after-adopt send "$name" m2               # stopped at the tail, adopts m0, dies
    "$R" receive "$name" 1                                   # before the fix: nothing within 5 s
    "$R" send "$name" m3
    "$R" receive "$name" 1
} | tee "$work/out"
verdict F5 "error: timed out"

"$R" delete "$name" >/dev/null 2>&1 || true
