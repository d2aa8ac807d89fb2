#!/usr/bin/env bash
# Installs what the browser tests (tests/e2e/browser) need:
#   chromium    Debian's package, at /usr/bin/chromium (driven headless, by path)
#   playwright  into the project's virtualenv, from requirements-browser.txt; its wheel
#               ships the driver.  `playwright install` is never run: no browser download.
# Idempotent and quiet; returns at once when everything is already installed.
# Usage: bash scripts/ci-browser-deps.sh   (VENV=path overrides the virtualenv, default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
      >"$log" 2>&1; then
    cat "$log" >&2
    echo "ci-browser-deps: could not install Debian's chromium" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "ci-browser-deps: no virtualenv at $venv (run \`make install\` first)" >&2
  exit 1
fi
if ! "$venv/bin/python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements-browser.txt
fi
