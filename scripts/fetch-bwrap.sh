#!/bin/sh
# Fetch bubblewrap (bwrap) into .tools/bwrap/ without installing it system-wide, for loophost's tool sandbox.
#
# Why: the built-in tools run sandboxed with bwrap when it is available (see docs/toolset.md); a fresh CI machine
# has only python3 and make, so this downloads the Debian/Ubuntu package and unpacks it (no root install, no setuid
# bit). Idempotent: does nothing when .tools/bwrap/usr/bin/bwrap already runs. Without apt-get (not a Debian-like
# system) it says so and exits 0: loophost then uses its documented, weaker fallback, or LOOPHOST_BWRAP / a bwrap
# on PATH.
set -eu
cd "$(dirname "$0")/.."
DEST=.tools/bwrap
BWRAP="$DEST/usr/bin/bwrap"
if [ -x "$BWRAP" ] && "$BWRAP" --version >/dev/null 2>&1; then
    echo "bwrap present: $BWRAP"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "apt-get/dpkg not available: not fetching bwrap (the tool sandbox falls back; see docs/toolset.md)"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if ! (cd "$WORK" && apt-get download bubblewrap >/dev/null 2>&1); then
    # the package lists may be missing on a fresh machine
    apt-get update >/dev/null 2>&1 || true
    if ! (cd "$WORK" && apt-get download bubblewrap); then
        echo "could not download the bubblewrap package: not fetching bwrap (the tool sandbox falls back)"
        exit 0
    fi
fi
rm -rf "$DEST"
mkdir -p "$DEST"
dpkg -x "$WORK"/bubblewrap_*.deb "$DEST"
if "$BWRAP" --version >/dev/null 2>&1; then
    echo "bwrap installed: $BWRAP ($("$BWRAP" --version))"
else
    echo "bwrap was unpacked to $BWRAP but does not run here (missing libraries?); the tool sandbox falls back"
fi
