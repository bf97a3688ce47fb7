#!/bin/sh
# Make sure the PostgreSQL server binaries (initdb, postgres) are on this machine, for the tests and benchmarks of
# loophost's PostgreSQL store.
#
# Why: the PostgreSQL tests start a throwaway server of their own (tests/_postgres.py) from the distribution's
# binaries under /usr/lib/postgresql/*/bin; a fresh CI machine has only python3 and make. When the binaries are
# missing this installs the distribution's `postgresql` package (root and apt-get needed). Idempotent: does nothing
# when they are there (or LOOPHOST_PG_BINDIR names them). When it cannot install, it says why and exits 0: the
# PostgreSQL tests then fail with that reason (they never skip).
set -eu
if [ -n "${LOOPHOST_PG_BINDIR:-}" ] && [ -x "$LOOPHOST_PG_BINDIR/initdb" ]; then
    echo "postgresql present: $LOOPHOST_PG_BINDIR"
    exit 0
fi
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    if [ -x "$initdb" ]; then
        echo "postgresql present: $(dirname "$initdb")"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries not found and apt-get is not available: install PostgreSQL, or set" \
        "LOOPHOST_PG_BINDIR to the directory of initdb and postgres (the PostgreSQL tests fail without them)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL server binaries not found: run as root, or install the postgresql package yourself" \
        "(apt-get install postgresql); the PostgreSQL tests fail without them"
    exit 0
fi
echo "installing the distribution's postgresql package (for the PostgreSQL tests)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
    echo "could not install the postgresql package; the PostgreSQL tests will fail"
    exit 0
fi
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$initdb" ] && echo "postgresql installed: $(dirname "$initdb")" && exit 0
done
echo "the postgresql package is installed but no /usr/lib/postgresql/*/bin/initdb was found"
