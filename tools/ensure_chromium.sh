#!/usr/bin/env bash
# Make headless Chromium available for tests/test_report.py, which renders the HTML report in a real
# browser to prove that injected log text does not execute and that the charts are drawn.
# Installs Debian's `chromium` package when it is missing and we are root; otherwise says what to do
# and exits 0, so the caller carries on (the test then skips, or fails when CI=true).
set -euo pipefail

for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_chromium: chromium is not installed and this is not root; install it with" \
    "'sudo apt-get install -y chromium' (the browser test in tests/test_report.py is skipped" \
    "without it, and fails when CI=true)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: chromium is not installed and there is no apt-get here; install" \
    "Chromium with this system's package manager" >&2
  exit 0
fi

echo "ensure_chromium: installing chromium (Debian package, once)" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent in a fresh container; refresh only when the install
# cannot find the package, so the common case makes one network round trip.
if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || {
  echo "ensure_chromium: apt-get finished but 'chromium' is still not on PATH" >&2
  exit 1
}
