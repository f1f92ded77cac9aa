#!/usr/bin/env bash
# Exhaustive SPIN checks of the crash-repair protocols of the two ring kinds and of the remote
# packs' progress (see README.md).
#
#   bash Models/check.sh            every run below; exit status 0 only if all went as expected
#   bash Models/check.sh NAME...    only the runs whose names start with one of NAME
#
# Each run: spin -a, gcc -DSAFETY, ./pan (exhaustive: no bitstate, no hash compaction). A run
# that is expected to pass fails the check on any error, on an incomplete search (memory limit)
# and on "search depth too small". A run that is expected to fail (the version-1 takeover, and
# deliberately broken "mutants" that show the invariants have teeth) fails the check unless
# SPIN finds the expected violation. When a protocol run fails, the run
# was repeated with the then proposed fixes (-DFIX_*), for information. The fixes are now the
# library's code (2026-12-01), so every protocol run includes them; the models' #else branches
# keep the protocol as it was when the findings were made (Models/README.md, Findings).
#
# Needs spin and gcc. JOBS (default: number of CPUs) runs in parallel; MEMLIM (MB per run,
# default 2048) bounds pan's memory; CFLAGS (default -O0) are gcc's flags for pan.c.
set -uo pipefail
cd "$(dirname "$0")"

command -v spin >/dev/null || { echo "check.sh: spin not found (apt-get install spin)" >&2; exit 2; }
command -v gcc >/dev/null || { echo "check.sh: gcc not found" >&2; exit 2; }

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
MEMLIM=${MEMLIM:-2048}
# -O0: pan.c of these models takes gcc ~7 s at -O2 and ~1 s at -O0, which costs more than the
# searches lose by running ~2x slower.
CFLAGS=${CFLAGS:--O0}
DEPTH=20000

O2O_FIXES="-DFIX_READINGUPTO -DFIX_HINT_LAG"
SHARED_FIXES="-DFIX_HEAD_HELP -DFIX_HEAD_LAPS -DFIX_DELIVERY_RACE"

# name | model | defines | expect: pass, or fail:<text of the expected assertion>
RUNS=(
    "o2o.sender-deaths|one_to_one.pml|-DM=3 -DMAXSD=2 -DMAXRD=0 $O2O_FIXES|pass"
    "o2o.receiver-deaths|one_to_one.pml|-DM=2 -DMAXSD=0 -DMAXRD=2 $O2O_FIXES|pass"
    "o2o.both-die|one_to_one.pml|-DM=2 -DMAXSD=1 -DMAXRD=1 $O2O_FIXES|pass"
    "o2o.v1-takeover|one_to_one.pml|-DM=3 -DMAXSD=1 -DMAXRD=0 -DV1_TAKEOVER $O2O_FIXES|fail:(h>tail)"
    "o2o.v1-takeover-unchecked|one_to_one.pml|-DM=3 -DMAXSD=1 -DMAXRD=0 -DV1_TAKEOVER -DV1_UNCHECKED $O2O_FIXES|fail:(redelivered||(id==(maxDelivered+1)))"
    "o2o.mutant-ignore-readingupto|one_to_one.pml|-DM=2 -DMAXSD=0 -DMAXRD=2 -DMUTANT_IGNORE_READINGUPTO $O2O_FIXES|fail:((dcount[id]==0)||redelivered)"
    "shared.sender-deaths|shared_ring.pml|-DNS=2 -DK=1 -DNR=1 -DMAXD=1 -DDIERS=1 $SHARED_FIXES|pass"
    "shared.receiver-deaths|shared_ring.pml|-DNS=1 -DK=2 -DNR=2 -DMAXD=1 -DDIERS=2 $SHARED_FIXES|pass"
    "shared.next-lap|shared_ring.pml|-DNS=1 -DK=3 -DNR=1 -DMAXD=2 -DDIERS=3 $SHARED_FIXES|pass"
    "shared.give-backs|shared_ring.pml|-DNS=1 -DK=5 -DNR=1 -DMAXD=1 -DDIERS=1 $SHARED_FIXES|pass"
    "shared.concurrent-give-backs|shared_ring.pml|-DNS=2 -DK=3 -DNR=0 -DMAXD=0 $SHARED_FIXES|pass"
    "shared.receipts|shared_ring.pml|-DRECEIPTS -DNS=1 -DK=2 -DNR=1 -DMAXD=2 -DDIERS=3 $SHARED_FIXES|pass"
    "shared.receipts-2r|shared_ring.pml|-DRECEIPTS -DNS=1 -DK=1 -DNR=2 -DMAXD=1 -DDIERS=3 $SHARED_FIXES|pass"
    "shared.mutant-no-liveness|shared_ring.pml|-DNS=1 -DK=2 -DNR=2 -DMAXD=1 -DDIERS=2 -DMUTANT_NO_LIVENESS $SHARED_FIXES|fail:assertion violated"
    "shared.mutant-no-mark|shared_ring.pml|-DNS=1 -DK=2 -DNR=2 -DMAXD=1 -DDIERS=2 -DMUTANT_NO_MARK $SHARED_FIXES|fail:((dcount[id]==0)||rf)"
    "shared.mutant-repair-store|shared_ring.pml|-DNS=1 -DK=3 -DNR=2 -DMAXD=1 -DDIERS=2 -DMUTANT_REPAIR_STORE $SHARED_FIXES|fail:!(released[id])"
    "shared.mutant-late-intent|shared_ring.pml|-DNS=2 -DK=1 -DNR=1 -DMAXD=1 -DDIERS=1 -DMUTANT_LATE_INTENT $SHARED_FIXES|fail:(slotw[(t%2)]==cur)"
    "shared.mutant-no-recheck|shared_ring.pml|-DRECEIPTS -DNS=1 -DK=2 -DNR=1 -DMAXD=2 -DDIERS=3 -DMUTANT_NO_RECHECK $SHARED_FIXES|fail:assertion violated"
    "pack.one-at-a-time|pack_progress.pml|-DK=3 -DL=1 -DMAXD=2 -DCALLS=6|pass"
    "pack.batches|pack_progress.pml|-DK=4 -DL=3 -DMAXD=2 -DCALLS=5|pass"
    "pack.mutant-no-stale-check|pack_progress.pml|-DK=3 -DL=1 -DMAXD=1 -DMUTANT_NO_STALE_CHECK|fail:((holder==me)&&(dc==mydc))"
    "pack.mutant-no-progress-read|pack_progress.pml|-DK=3 -DL=1 -DMAXD=1 -DMUTANT_NO_PROGRESS_READ|fail:!(committed[next])"
)

FILTER=("$@")
selected() { # selected NAME: whether the command line asked for it
    [ ${#FILTER[@]} -eq 0 ] && return 0
    local prefix
    for prefix in "${FILTER[@]}"; do [[ $1 == "$prefix"* ]] && return 0; done
    return 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spin-models.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# run NAME MODEL DEFINES: builds and runs one model in $WORK/NAME; pan's output in .../out
run() {
    local name=$1 model=$2 defines=$3 dir="$WORK/$1"
    mkdir -p "$dir"
    cp "$model" "$dir/"
    (
        cd "$dir" || exit 2
        # shellcheck disable=SC2086
        spin $defines -a "$model" >spin.log 2>&1 || { cat spin.log; exit 2; }
        gcc -w $CFLAGS -DSAFETY -DCOLLAPSE -DMEMLIM="$MEMLIM" -o pan pan.c >gcc.log 2>&1 || { cat gcc.log; exit 2; }
        TIMEFORMAT='%U %S'
        { time ./pan -m"$DEPTH" >out 2>&1; } 2>cpu
    ) >"$dir/log" 2>&1
}

# The first error's trail, as the models narrate it (their printf lines), up to the violation.
summarize() {
    local name=$1 model=$2 defines=$3 dir="$WORK/$1"
    (
        cd "$dir" || exit 0
        [ -f "$model.trail" ] || exit 0
        # shellcheck disable=SC2086
        spin $defines -t "$model" 2>&1 | sed -n '/trail ends/q; /^ *$/d; p' |
            sed -E 's/^ +/      /; s/: +/: /' | tail -40
    )
}

field() { # field OUT REGEX: first match of a sed -E capture
    sed -nE "s/$2/\\1/p" "$1" | head -1
}

verdict() { # verdict NAME EXPECT -> prints a line, returns 0 if as expected
    local name=$1 expect=$2 out="$WORK/$1/out"
    if [ ! -s "$out" ]; then
        printf '%-36s BUILD FAILED\n' "$name"; sed 's/^/      /' "$WORK/$name/log"; return 1
    fi
    local errors states depth secs cpu
    errors=$(field "$out" '.*errors: ([0-9]+).*')
    states=$(field "$out" '^ *([0-9.e+]+) states, stored.*')
    depth=$(field "$out" '.*depth reached ([0-9]+),.*')
    secs=$(field "$out" '^pan: elapsed time ([0-9.e+]+) seconds.*')
    cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$WORK/$name/cpu" 2>/dev/null)
    local stats
    stats=$(printf '%10s states  depth %4s  %5ss (cpu %5ss)' "${states:-?}" "${depth:-?}" "${secs:-?}" "${cpu:-?}")
    if grep -q 'depth too small' "$out"; then
        printf '%-36s %s  FAIL: search depth too small (-m%s)\n' "$name" "$stats" "$DEPTH"; return 1
    fi
    local violation
    violation=$(grep -m1 -E 'assertion violated|invalid end state|acceptance cycle|non-progress' "$out" | sed -E 's/^pan:[0-9]+: *//; s/ \(at depth [0-9]+\)//')
    if [ "$expect" = pass ]; then
        if [ "${errors:-1}" = 0 ] && ! grep -q 'Search not completed' "$out"; then
            printf '%-36s %s  ok\n' "$name" "$stats"; return 0
        fi
        if [ -z "$violation" ] && grep -q 'Search not completed' "$out"; then
            violation="search not completed (memory limit $MEMLIM MB?)"
        fi
        printf '%-36s %s  FAIL: %s\n' "$name" "$stats" "${violation:-errors: ${errors:-?}}"; return 1
    fi
    local wanted=${expect#fail:}
    if [ "${errors:-0}" != 0 ] && [[ $violation == *"$wanted"* ]]; then
        printf '%-36s %s  ok (fails as expected: %s)\n' "$name" "$stats" "$violation"; return 0
    fi
    printf '%-36s %s  FAIL: expected a violation of %s, got: %s\n' "$name" "$stats" "$wanted" "${violation:-none}"
    return 1
}

# Run the selected runs, JOBS at a time.
run_all() { # run_all SPEC...
    local spec name model defines expect running=0
    for spec in "$@"; do
        IFS='|' read -r name model defines expect <<<"$spec"
        run "$name" "$model" "$defines" &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    done
    wait
}

SPECS=()
for spec in "${RUNS[@]}"; do
    IFS='|' read -r name _ _ _ <<<"$spec"
    selected "$name" && SPECS+=("$spec")
done
[ ${#SPECS[@]} -gt 0 ] || { echo "check.sh: no run matches $*" >&2; exit 2; }

started=$(date +%s)
echo "SPIN $(spin -V | sed -nE 's/.*Version ([0-9.]+).*/\1/p'), $JOBS parallel, gcc $CFLAGS, -m$DEPTH, MEMLIM ${MEMLIM} MB"
run_all "${SPECS[@]}"

failed=0
FIXSPECS=()
for spec in "${SPECS[@]}"; do
    IFS='|' read -r name model defines expect <<<"$spec"
    if ! verdict "$name" "$expect"; then
        failed=1
        summarize "$name" "$model" "$defines"
        if [ "$expect" = pass ]; then
            case $model in
                one_to_one.pml) fixes=$O2O_FIXES ;;
                shared_ring.pml) fixes=$SHARED_FIXES ;;
                *) continue ;;
            esac
            FIXSPECS+=("$name+fixes|$model|$defines $fixes|pass")
        fi
    fi
done

if [ ${#FIXSPECS[@]} -gt 0 ]; then
    echo
    echo "The same runs with the proposed fixes (README.md, 'Findings'), for information:"
    run_all "${FIXSPECS[@]}"
    for spec in "${FIXSPECS[@]}"; do
        IFS='|' read -r name model defines expect <<<"$spec"
        verdict "$name" "$expect" || summarize "$name" "$model" "$defines"
    done
fi

echo
echo "total $(( $(date +%s) - started ))s"
if [ "$failed" != 0 ]; then
    echo "FAILED: a model found a violation (see above and Models/README.md)" >&2
    exit 1
fi
echo "all models verified"
