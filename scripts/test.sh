#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test of the workspace.
# Works on a fresh machine with only the Rust toolchain; installs what tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Seeds of the sync simulation in a normal run (MODORI_SIM_SEEDS=100000 for a long soak).
export MODORI_SIM_SEEDS="${MODORI_SIM_SEEDS:-1000}"

# The systemd tests verify the units with systemd-analyze; install it where it is missing.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "== installing systemd (for systemd-analyze)"
  if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq && DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq systemd >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked -- --test-threads=2
