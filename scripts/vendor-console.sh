#!/bin/sh
# Re-fetch the web console's vendored libraries (src/loophost/server/console/static/vendor/) from the npm registry.
#
# Why: the console ships them as committed files (no build step, no CDN); this is how they got there, and how to
# update them: `npm pack` the exact versions, copy the ES module builds, then compare with the digests recorded in
# vendor/README.md (a mismatch means the README needs the new digests, or the registry served something else).
set -eu
cd "$(dirname "$0")/.."
PREACT=${PREACT:-11.2.0}
HTM=${HTM:-3.1.1}
DEST=src/loophost/server/console/static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "preact@$PREACT" "htm@$HTM" >/dev/null)
mkdir -p "$WORK/preact" "$WORK/htm"
tar -xzf "$WORK/preact-$PREACT.tgz" -C "$WORK/preact"
tar -xzf "$WORK/htm-$HTM.tgz" -C "$WORK/htm"
cp "$WORK/preact/package/dist/preact.mjs" "$DEST/preact.mjs"
cp "$WORK/preact/package/hooks/dist/hooks.mjs" "$DEST/preact-hooks.mjs"
cp "$WORK/preact/package/LICENSE" "$DEST/LICENSE-preact"
cp "$WORK/htm/package/dist/htm.mjs" "$DEST/htm.mjs"
cp "$WORK/htm/package/LICENSE" "$DEST/LICENSE-htm"
status=0
for f in preact.mjs preact-hooks.mjs htm.mjs; do
    digest=$(sha256sum "$DEST/$f" | cut -d' ' -f1)
    if grep -q "$digest" "$DEST/README.md"; then
        echo "$f: $digest (as recorded)"
    else
        echo "$f: $digest is NOT the digest recorded in $DEST/README.md"
        status=1
    fi
done
exit $status
