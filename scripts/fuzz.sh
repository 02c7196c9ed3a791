#!/usr/bin/env bash
# Fuzzing with cargo fuzz (libFuzzer); targets and figures in docs/fuzzing.md.
#
#   scripts/fuzz.sh build [sanitizer]     build every target (sanitizer: none (default) or address)
#   scripts/fuzz.sh run SECS [TARGET..]   each target for SECS seconds, no sanitizer; new inputs go
#                                         to a scratch corpus, never to the committed one
#   scripts/fuzz.sh check [TARGET..]      each target for a fixed number of runs from a fixed seed
#                                         (scripts/test.sh runs this: the same code gets the same
#                                         verdict; exploring is what `run` and `long` are for)
#   scripts/fuzz.sh long [TARGET..]       each target for 10 million runs or one hour, whichever
#                                         comes first, with AddressSanitizer and leak detection
#                                         (LPM_FUZZ_SANITIZER=none: without, several times faster),
#                                         one at a time under nice, logs in fuzz/logs/
#   scripts/fuzz.sh cmin [TARGET..]       merge the long-run corpus into fuzz/corpus/TARGET, minimised
#   scripts/fuzz.sh repro TARGET FILE     run one input (an artifact) through TARGET
#
# cargo fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage) to rustc: on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it, so no nightly toolchain is needed. cargo-fuzz is installed,
# pinned, when missing. Builds go to ${CARGO_TARGET_DIR:-fuzz/target}/fuzz-<sanitizer>, one
# directory per sanitizer so that switching does not rebuild everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.1
TARGETS=(kcat_line binlog_rows capture_values log_recovery grafana_request)
export RUSTC_BOOTSTRAP=1

say() { printf '\n== fuzz: %s\n' "$*"; }

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

target_dir() { echo "${CARGO_TARGET_DIR:-$root/fuzz/target}/fuzz-$1"; }

# The libFuzzer options of a target: its dictionary, and a per-input time limit (a request or
# a record that takes seconds is a finding, not a slow run).
options() {
  local t=$1
  case $t in
    kcat_line | log_recovery) echo "-dict=$root/fuzz/dict/debezium.dict" ;;
    grafana_request) echo "-dict=$root/fuzz/dict/grafana.dict" ;;
  esac
  echo "-timeout=10"
}

# Under AddressSanitizer every input runs several times slower: a Grafana request at the edge of
# its work budget (200 000 points) takes seconds there, which is not a finding; libFuzzer takes
# the last -timeout given.
slow_timeout() {
  [ "$1" = address ] && echo "-timeout=30"
}

# Runs of `check` per target: about 20 s each on this 2-core machine.
check_runs() {
  case $1 in
    kcat_line) echo 100000 ;;
    binlog_rows) echo 300000 ;;
    capture_values) echo 300000 ;;
    log_recovery) echo 25000 ;;
    grafana_request) echo 100000 ;;
  esac
}

build() {
  local sanitizer=$1
  say "building the targets (sanitizer: $sanitizer)"
  cargo fuzz build --fuzz-dir "$root/fuzz" -s "$sanitizer" -a --target-dir "$(target_dir "$sanitizer")"
}

# fuzz SANITIZER TARGET CORPUS LIBFUZZER_ARGS..: runs TARGET over the committed corpus, writing
# new inputs to CORPUS.
fuzz() {
  local sanitizer=$1 t=$2 corpus=$3
  shift 3
  mkdir -p "$corpus" "$root/fuzz/corpus/$t"
  # shellcheck disable=SC2046
  cargo fuzz run --fuzz-dir "$root/fuzz" -s "$sanitizer" -a --target-dir "$(target_dir "$sanitizer")" \
    "$t" "$corpus" "$root/fuzz/corpus/$t" -- $(options "$t") "$@"
}

cmd=${1:-}
shift || true
case $cmd in
  build)
    build "${1:-none}"
    ;;
  run | check)
    if [ "$cmd" = run ]; then
      secs=${1:?usage: scripts/fuzz.sh run SECS [TARGET..]}
      shift
    fi
    [ $# -gt 0 ] || set -- "${TARGETS[@]}"
    build none
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for t in "$@"; do
      if [ "$cmd" = run ]; then
        limit=(-max_total_time="$secs")
        say "$t for ${secs}s"
      else
        limit=(-seed=1 -runs="$(check_runs "$t")")
        say "$t: $(check_runs "$t") runs from seed 1"
      fi
      start=$(date +%s)
      log="$scratch/$t.log"
      status=0
      fuzz none "$t" "$scratch/$t" "${limit[@]}" -print_final_stats=1 >"$log" 2>&1 || status=$?
      grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)' "$log" || true
      # a crash, timeout or leak makes cargo fuzz fail and leaves an artifact
      if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t" >&2
        exit 1
      fi
      echo "fuzz: $t ok in $(($(date +%s) - start))s"
    done
    ;;
  long)
    [ $# -gt 0 ] || set -- "${TARGETS[@]}"
    sanitizer=${LPM_FUZZ_SANITIZER:-address}
    leaks=1
    [ "$sanitizer" = address ] || leaks=0
    build "$sanitizer"
    for t in "$@"; do
      logs="$root/fuzz/logs/$t"
      mkdir -p "$logs" "$root/fuzz/target/corpus-long/$t"
      say "$t: 10M runs or 1 h (log: fuzz/logs/$t/fuzz-0.log)"
      # -jobs=1: one fuzzing process, its output in fuzz-0.log of the current directory
      status=0
      (cd "$logs" && nice -n 10 cargo fuzz run --fuzz-dir "$root/fuzz" -s "$sanitizer" -a \
        --target-dir "$(target_dir "$sanitizer")" "$t" "$root/fuzz/target/corpus-long/$t" "$root/fuzz/corpus/$t" -- \
        $(options "$t") $(slow_timeout "$sanitizer") -jobs=1 -runs=10000000 -max_total_time=3600 -detect_leaks=$leaks \
        -print_final_stats=1) || status=$?
      if [ "${status:-0}" -ne 0 ] || grep -qE '^ERROR|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|panicked' "$logs/fuzz-0.log"; then
        echo "fuzz: $t found something; see fuzz/logs/$t/fuzz-0.log and fuzz/artifacts/$t" >&2
        exit 1
      fi
      grep -E 'Done [0-9]+ runs|stat::' "$logs/fuzz-0.log" || true
    done
    ;;
  cmin)
    [ $# -gt 0 ] || set -- "${TARGETS[@]}"
    build none
    for t in "$@"; do
      merged=$(mktemp -d)
      mkdir -p "$root/fuzz/target/corpus-long/$t"
      cargo fuzz run --fuzz-dir "$root/fuzz" -s none -a --target-dir "$(target_dir none)" "$t" \
        "$merged" "$root/fuzz/corpus/$t" "$root/fuzz/target/corpus-long/$t" -- -merge=1 2>&1 | tail -1
      rm -rf "$root/fuzz/corpus/$t"
      mv "$merged" "$root/fuzz/corpus/$t"
      echo "fuzz: $t corpus: $(ls "$root/fuzz/corpus/$t" | wc -l) files, $(du -sh "$root/fuzz/corpus/$t" | cut -f1)"
    done
    ;;
  repro)
    t=${1:?usage: scripts/fuzz.sh repro TARGET FILE}
    file=${2:?usage: scripts/fuzz.sh repro TARGET FILE}
    cargo fuzz run --fuzz-dir "$root/fuzz" -s none -a --target-dir "$(target_dir none)" "$t" "$file"
    ;;
  *)
    sed -n '2,17p' "$0" >&2
    exit 2
    ;;
esac
