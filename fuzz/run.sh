#!/usr/bin/env bash
# Run the fuzzers and print executions and crashes per target.
#
# How this works
# --------------
#   fuzz/run.sh SECONDS [full|ci]
# Three fuzzers run side by side for SECONDS each:
#   decoders  libFuzzer C harness fuzz/fuzz_decoders.c, built with clang
#             -fsanitize=fuzzer,address,undefined against csrc/*.c
#   wire      atheris: native codec vs the pure-Python reference (differential)
#   receive   atheris: Connection.receive_datagram, security "none" and "noise"
# Each starts from tests/corpus/<corpus> copied into build/fuzz/work-<target>.
# "full" (make fuzz) merges inputs that reach new coverage back into
# tests/corpus (libFuzzer -merge=1 keeps the set minimal). "ci" (make fuzz-ci)
# runs the atheris targets on the AddressSanitizer/UBSan build of the native
# module (build/sanitize, runtimes preloaded) and leaves tests/corpus alone.
# Crashing inputs land in build/fuzz/crash-<target>-*; the exit status is 1
# when any target crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
MODE=${2:-full}
PY=${PY:-.venv/bin/python}
OUT=build/fuzz
mkdir -p "$OUT"

if ! command -v clang >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -qq clang >/dev/null || true
    fi
fi
"$PY" -c "import atheris" 2>/dev/null || "$PY" -m pip install --quiet atheris

pids=()
names=()
start() {  # name, log, command...
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

flags=(-max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=20 -rss_limit_mb=4096)

# --- decoders: the C harness (always sanitized) ---
if command -v clang >/dev/null 2>&1; then
    clang -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -Icsrc fuzz/fuzz_decoders.c csrc/codec.c csrc/frames.c \
        csrc/packet.c csrc/crc32c.c -o "$OUT/fuzz_decoders"
    rm -rf "$OUT/work-decoders" && mkdir -p "$OUT/work-decoders"
    cp tests/corpus/wire/* "$OUT/work-decoders/"
    start decoders "$OUT/decoders.log" "$OUT/fuzz_decoders" "${flags[@]}" -max_len=4096 \
        -artifact_prefix="$OUT/crash-decoders-" "$OUT/work-decoders"
else
    echo "decoders: clang not available, C harness skipped"
fi

# --- atheris targets ---
san_env=()
if [ "$MODE" = ci ]; then
    if [ ! -d build/sanitize ]; then
        TRANSPORT_SANITIZE=1 "$PY" csrc/ffi_build.py build/sanitize >/dev/null
    fi
    san_env=(env PYTHONMALLOC=malloc
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
        TRANSPORT_NATIVE_PATH=build/sanitize)
fi
for target in wire receive; do
    rm -rf "$OUT/work-$target" && mkdir -p "$OUT/work-$target"
    cp tests/corpus/$target/* "$OUT/work-$target/"
    start "$target" "$OUT/$target.log" "${san_env[@]}" "$PY" fuzz/run_atheris.py "$target" \
        "${flags[@]}" -artifact_prefix="$OUT/crash-$target-" "$OUT/work-$target"
done

status=0
total=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    rc=$?
    name=${names[$i]}
    log=$OUT/$name.log
    execs=$(grep -o 'number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    rate=$(grep -o 'average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    crashes=$(ls "$OUT"/crash-"$name"-* 2>/dev/null | wc -l)
    echo "fuzz $name: ${execs:-0} executions (${rate:-0}/s), $crashes crashes, exit $rc (log $log)"
    total=$((total + ${execs:-0}))
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        status=1
        grep -m5 -E 'ERROR|FuzzFailure|Traceback|runtime error' "$log" || true
    fi
done
echo "fuzz total: $total executions, exit $status"

if [ "$MODE" = full ] && [ "$status" = 0 ]; then
    if [ -x "$OUT/fuzz_decoders" ]; then
        "$OUT/fuzz_decoders" -merge=1 tests/corpus/wire "$OUT/work-decoders" >/dev/null 2>&1 || true
    fi
    for target in wire receive; do
        "$PY" fuzz/run_atheris.py "$target" -merge=1 "tests/corpus/$target" \
            "$OUT/work-$target" >/dev/null 2>&1 || true
    done
    echo "corpus: wire $(ls tests/corpus/wire | wc -l) inputs, receive $(ls tests/corpus/receive | wc -l) inputs"
fi
exit $status
