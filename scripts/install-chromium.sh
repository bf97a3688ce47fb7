#!/bin/sh
# Make sure Chromium is installed, for the web console's browser tests (tests/server/console/).
#
# Why: the tests drive a real headless Chromium with Playwright, but Playwright's own browser downloads are not
# possible everywhere (no internet but the package mirrors), so they use the distribution's `chromium` package.
# Idempotent: does nothing when `chromium` (or LOOPHOST_CHROMIUM) is already there. Installing needs root and
# apt-get; without them it says so and exits 0, and the browser tests then fail (they never skip) saying why.
set -eu
if [ -n "${LOOPHOST_CHROMIUM:-}" ] && [ -x "$LOOPHOST_CHROMIUM" ]; then
    echo "chromium present: $LOOPHOST_CHROMIUM"
    exit 0
fi
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "chromium present: $(command -v "$name")"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing and apt-get is not available: install Chromium (or set LOOPHOST_CHROMIUM) for the console's browser tests"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing: run 'apt-get install chromium' as root (or set LOOPHOST_CHROMIUM) for the console's browser tests"
    exit 0
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
command -v chromium
