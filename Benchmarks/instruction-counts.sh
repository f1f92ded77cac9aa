#!/usr/bin/env bash
# Instructions and heap allocations per message, counted by valgrind's callgrind, checked against
# the committed baseline (Benchmarks/instruction-counts.baseline). See Benchmarks/README.md.
#
#   bash Benchmarks/instruction-counts.sh                 # build, measure, compare; fails on a regression
#   bash Benchmarks/instruction-counts.sh --update        # measure and rewrite the baseline
#   bash Benchmarks/instruction-counts.sh --binary PATH   # use this build of the instruction-counts target
#   bash Benchmarks/instruction-counts.sh --only REGEX    # only configurations whose names match
#   bash Benchmarks/instruction-counts.sh --profile CONFIG [COUNT]
#                                                         # top COUNT (15) functions of CONFIG by
#                                                         # self instructions per message
#
# Each configuration runs twice under callgrind, with N1 and N2 messages; per message means
# (count at N2 - count at N1) / (N2 - N1), which removes what is done once (the first calls).
# Only the workload's measured section is counted: callgrind zeroes its counters when the section
# starts and writes them out when it ends (setup and clean-up list /dev/shm and read /proc, which
# depend on the machine). Reads of /proc/PID/stat (ProcessIdentity.status(of:), the liveness
# checks an endpoint sender makes at most every 10 ms of wall-clock time, so more often the slower
# the run) are left out as well: they are per unit of time, not per message.
#
# Allocations are entries into the C allocator (malloc, calloc, realloc and the aligned ones),
# whoever makes them (Swift objects and arrays come through swift_slowAlloc to malloc).
#
# Tolerance: instructions per message may grow by 5% or 10 instructions, whichever is more;
# allocations per message may not grow at all. Improvements beyond that pass with a hint to update
# the baseline. The zero-copy, batched and async configurations must not allocate at all, whatever the
# baseline says (also with --update).
set -euo pipefail
cd "$(dirname "$0")/.."

# glibc picks its memcpy and memset by CPU (vendor, cache sizes), so the large-message counts
# differ between the AMD and Intel hosts CI runs on (endpoint-copy-4096: 2718 on the host the
# default file was measured on, 2966 on AMD EPYC, the same binary). A vendor's own file, where
# there is one, is the baseline on that vendor's machines; --update rewrites the file in use.
vendor=$(awk -F': *' '/^vendor_id/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
baseline=Benchmarks/instruction-counts.baseline
[ -n "$vendor" ] && [ -f "Benchmarks/instruction-counts.$vendor.baseline" ] && baseline="Benchmarks/instruction-counts.$vendor.baseline"
n1=2048
n2=4096
binary=""
only=""
update=false
profile=""
profile_count=15

while [ $# -gt 0 ]; do
    case "$1" in
        --update) update=true ;;
        --binary) binary="$2"; shift ;;
        --only) only="$2"; shift ;;
        --profile) profile="$2"
                   if [ $# -gt 2 ] && [[ "$3" =~ ^[0-9]+$ ]]; then profile_count="$3"; shift; fi
                   shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }

if [ -z "$binary" ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
    swift build -c release --product instruction-counts >&2
    binary=.build/release/instruction-counts
fi
[ -x "$binary" ] || { echo "no executable at $binary" >&2; exit 2; }

work="$(mktemp -d /tmp/shmmb-icount.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Valgrind 3.19 cannot read the DWARF 5 debug information Swift 6 emits (it gives up on the
# binary); function names come from the symbol table, which stays.
objcopy=objcopy
command -v objcopy >/dev/null || objcopy=/opt/swift/usr/bin/llvm-objcopy
"$objcopy" --strip-debug "$binary" "$work/instruction-counts"

# A fixed environment: the same variables (and so the same stack layout) on every run, Swift's
# hashing without a random seed, and no address randomization where the system lets us turn it off.
run_env=(env -i PATH=/usr/bin:/bin LANG=C SWIFT_DETERMINISTIC_HASHING=1)
if setarch "$(uname -m)" -R true 2>/dev/null; then
    run_env+=(setarch "$(uname -m)" -R)
fi

callgrind_args=(
    --tool=callgrind
    --dump-instr=yes --compress-strings=no --compress-pos=no
    # Left out: ProcessIdentity.status(of:) (the /proc/PID/stat reads). `--collect-atstart`
    # must follow `--toggle-collect`, which turns collection off at start.
    "--toggle-collect=*ProcessIdentityV6status*" --collect-atstart=yes
    # The measured section (one action per function: zero on entering one, dump on entering the other).
    "--zero-before=*instruction_counts15measuredSection*"
    "--dump-before=*instruction_counts18measuredSectionEnd*"
)

# run CONFIG N OUT: the callgrind dump of the measured section of CONFIG with N messages, in OUT.
run() {
    local config="$1" n="$2" out="$3"
    rm -f "$out" "$out".*
    if ! "${run_env[@]}" valgrind "${callgrind_args[@]}" --callgrind-out-file="$out" \
            "$work/instruction-counts" "$config" "$n" >"$out.log" 2>&1; then
        echo "$config ($n messages) failed under valgrind:" >&2
        grep -v '^==[0-9]*==' "$out.log" >&2 || true
        tail -5 "$out.log" >&2
        exit 1
    fi
    [ -f "$out.1" ] || { echo "$config: callgrind wrote no dump of the measured section (renamed?)" >&2; exit 1; }
    mv "$out.1" "$out"
}

# counts FILE: "instructions allocations" of a callgrind dump. An allocation is one execution of
# the first instruction of an allocator entry point (whose address the dump gives as the target of
# the calls to it). Not the dump's call counts: callgrind counts calls also where it collects no
# costs (inside ProcessIdentity.status(of:)), executed instructions only where it collects.
counts() {
    awk '
        BEGIN {
            split("malloc calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc " \
                  "__libc_malloc __libc_calloc __libc_realloc __libc_memalign __posix_memalign", names, " ")
            for (i in names) alloc[names[i]] = 1
        }
        function base(name) { sub(/'"'"'[0-9]+$/, "", name); return name }
        /^(totals|summary):/ { total = $2; next }
        /^ob=/ { ob = substr($0, 4); next }
        /^fn=/ { fn = base(substr($0, 4)); next }
        /^cob=/ { cob = substr($0, 5); next }
        /^cfn=/ { callee = base(substr($0, 5)); callee_ob = (cob != "" ? cob : ob); cob = ""; next }
        # The line after calls= is the cost of that call, not of the function it is in.
        /^calls=/ { if (callee in alloc) entry[callee_ob SUBSEP $2] = 1; after_call = 1; next }
        /^0x/ {
            if (after_call) { after_call = 0; next }
            if (fn in alloc) executed[ob SUBSEP $1] += $NF
            next
        }
        END {
            for (k in entry) allocs += executed[k]
            printf "%d %d\n", total, allocs
        }
    ' "$1"
}

# self_costs FILE: "instructions<TAB>function" per function (self cost). Left out: the functions
# that were on the stack when the counters were zeroed, to which callgrind_annotate gives the whole
# total.
self_costs() {
    callgrind_annotate --threshold=100 "$1" 2>/dev/null |
        awk '/^-+$/ { rule++; next }
             rule >= 4 && NF >= 2 {
                 cost = $1; gsub(",", "", cost); $1 = ""; sub(/^ +/, ""); sub(/^\([ 0-9.]+%\) +/, "")
                 if ($0 == "PROGRAM TOTALS") { total = cost; next }
                 if (cost != total) print cost "\t" $0
             }'
}

if [ -n "$profile" ]; then
    run "$profile" "$n1" "$work/a"
    run "$profile" "$n2" "$work/b"
    demangle=(cat)
    if command -v swift-demangle >/dev/null; then demangle=(swift-demangle --simplified)
    elif [ -x /opt/swift/usr/bin/swift-demangle ]; then demangle=(/opt/swift/usr/bin/swift-demangle --simplified); fi
    echo "$profile: self instructions per message by function ((N=$n2) - (N=$n1)) / $((n2 - n1))"
    awk -F'\t' -v d=$((n2 - n1)) '
        FNR == NR { a[$2] = $1; next }
        { b[$2] = $1 }
        END {
            for (f in b) { x = (b[f] - a[f]) / d; if (x >= 0.5 || x <= -0.5) printf "%10.1f  %s\n", x, f }
            for (f in a) if (!(f in b)) { x = -a[f] / d; if (x <= -0.5) printf "%10.1f  %s\n", x, f }
        }' <(self_costs "$work/a") <(self_costs "$work/b") | sort -rn | head -n "$profile_count" | "${demangle[@]}" |
        sed 's| \[[^]]*/\([^]/]*\)\]$| [\1]|; s|^\( *[-0-9.]*  \)???:|\1|' 
    read -r i1 _ <<<"$(counts "$work/a")"
    read -r i2 _ <<<"$(counts "$work/b")"
    awk -v a="$i1" -v b="$i2" -v d=$((n2 - n1)) 'BEGIN { printf "%10.1f  (total)\n", (b - a) / d }'
    exit 0
fi

configs=$("$work/instruction-counts" --list)
if [ -n "$only" ]; then configs=$(grep -E -- "$only" <<<"$configs" || true); fi
[ -n "$configs" ] || { echo "no configuration matches $only" >&2; exit 2; }

started=$SECONDS
results="$work/results"
: >"$results"
for config in $configs; do
    run "$config" "$n1" "$work/a"
    run "$config" "$n2" "$work/b"
    read -r i1 a1 <<<"$(counts "$work/a")"
    read -r i2 a2 <<<"$(counts "$work/b")"
    awk -v c="$config" -v i1="$i1" -v i2="$i2" -v a1="$a1" -v a2="$a2" -v d=$((n2 - n1)) \
        'BEGIN { printf "%s %.1f %.2f\n", c, (i2 - i1) / d, (a2 - a1) / d }' >>"$results"
done

old_baseline="$work/old-baseline"
cat "$baseline" >"$old_baseline" 2>/dev/null || : >"$old_baseline"

if $update; then
    # With --only, the other configurations keep their lines; without, the list is rewritten.
    keep="$old_baseline"
    [ -n "$only" ] || keep=/dev/null
    {
        echo "# Instructions and heap allocations per message (send + receive), counted by callgrind:"
        echo "# Benchmarks/instruction-counts.sh, which checks against this file. Rewrite it with"
        echo "# 'bash Benchmarks/instruction-counts.sh --update' and commit it with the change that moved the counts."
        echo "# Measured on: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null) ($vendor)."
        echo "# configuration  instructions/message  allocations/message"
        awk 'FNR == NR { new[$1] = $0; order[++count] = $1; next }
             /^#/ || NF == 0 { next }
             { if ($1 in new) { print new[$1]; delete new[$1] } else print }
             END { for (k = 1; k <= count; k++) if (order[k] in new) print new[order[k]] }' "$results" "$keep" |
            awk '{ printf "%-20s %10s %6s\n", $1, $2, $3 }'
    } >"$baseline"
    echo "wrote $baseline"
fi

status=0
awk -v mode="$($update && echo update || echo check)" '
    FILENAME == ARGV[1] { if ($0 !~ /^#/ && NF >= 3) { bi[$1] = $2; ba[$1] = $3 }; next }
    FNR == 1 {
        printf "%-20s %10s %10s %8s %8s %8s  %s\n", "configuration", "instr/msg", "baseline", "change", "allocs", "baseline", "verdict"
    }
    {
        c = $1; i = $2 + 0; a = $3 + 0
        verdict = "ok"
        if (c ~ /-(zc|batch|poll|async)-/ && a > 0) { verdict = "FAIL: a zero-copy, batched, polling or async path allocates"; bad++ }
        if (!(c in bi)) {
            if (mode == "update") { if (verdict == "ok") verdict = "new" }
            else { if (verdict == "ok") verdict = "FAIL: not in the baseline (--update)"; bad++ }
            printf "%-20s %10.1f %10s %8s %8.2f %8s  %s\n", c, i, "-", "-", a, "-", verdict
            next
        }
        base = bi[c] + 0; slack = base * 0.05; if (slack < 10) slack = 10
        change = base > 0 ? sprintf("%+.1f%%", (i - base) * 100 / base) : "-"
        if (verdict != "ok") {}
        else if (mode == "update") { if (i > base + slack || i < base - slack || a != ba[c] + 0) verdict = "updated" }
        else if (i > base + slack) { verdict = sprintf("FAIL: instructions above %.1f", base + slack); bad++ }
        else if (a > ba[c] + 0.005) { verdict = "FAIL: more allocations"; bad++ }
        else if (i < base - slack || a < ba[c] - 0.005) verdict = "better: update the baseline (--update)"
        printf "%-20s %10.1f %10.1f %8s %8.2f %8.2f  %s\n", c, i, base, change, a, ba[c], verdict
    }
    END { exit bad > 0 ? 1 : 0 }
' "$old_baseline" "$results" || status=$?

echo "($(($(wc -l <"$results"))) configurations, $n1 and $n2 messages each, $((SECONDS - started)) s under callgrind)"
if [ "$status" -ne 0 ] && $update; then
    echo "instruction counts: the baseline is written, but a zero-copy or batched path allocates (FAIL above)" >&2
    exit 1
elif [ "$status" -ne 0 ]; then
    echo "instruction counts: REGRESSION (see FAIL above). If it is intended, run" >&2
    echo "  bash Benchmarks/instruction-counts.sh --update" >&2
    echo "and commit $baseline with the change, saying why." >&2
    exit 1
fi
$update || echo "instruction counts: within the baseline's tolerance"
