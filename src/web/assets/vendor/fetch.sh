#!/usr/bin/env bash
# Re-fetches the vendored browser libraries from the npm registry (this folder's files) and the
# test-only axe-core (tests/browser/vendor/), and checks every file's SHA-256 against the pins
# below (and the wasm against the SHA-256 the ponyfill itself exports). Documented in README.md;
# CI does not run it. Needs npm, tar, sha256sum.
#
#   bash src/web/assets/vendor/fetch.sh          # fetch, copy, check
#   bash src/web/assets/vendor/fetch.sh --check  # only check the files in place
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
tests_vendor="$root/tests/browser/vendor"

BARCODE_DETECTOR=3.2.2
ZXING_WASM=3.1.3
AXE_CORE=4.14.1

# file (relative to the repository) and its SHA-256.
pins=(
    "src/web/assets/vendor/ponyfill.js 009a5585abd30198fb5fbdfca4a0c6555747a6da308442462adc47f101e9605a"
    "src/web/assets/vendor/zxing-exported.js 96594fe045ebae09ffc7c22901a7efda1874736b937cf2006470f0bdc92bb551"
    "src/web/assets/vendor/zxing_reader.wasm 2ebda08a93eea3efcd8399cda6b276e6a0b1de4fec60b4d8988a047de4c6d1ba"
    "src/web/assets/vendor/LICENSE.barcode-detector fb506e4ade12d7a9efa67c9d76a9a28c8e15d347ca49a69e48e29b40b34ad2ab"
    "src/web/assets/vendor/LICENSE.zxing-wasm fb506e4ade12d7a9efa67c9d76a9a28c8e15d347ca49a69e48e29b40b34ad2ab"
    "tests/browser/vendor/axe.min.js 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
    "tests/browser/vendor/LICENSE.axe-core af175b9d96ee93c21a036152e1b905b0b95304d4ae8c2c921c7609100ba8df7e"
    "tests/browser/vendor/LICENSE-3RD-PARTY.axe-core.txt 4f8563870d0fca38bbc3e00b6f670cb7fa9f380ba9f26a7f7d1184a6b18b1653"
)

if [ "${1:-}" != "--check" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (
        cd "$work"
        # npm pack checks each tarball against the registry's integrity hash.
        npm pack --silent "barcode-detector@$BARCODE_DETECTOR" "zxing-wasm@$ZXING_WASM" \
            "axe-core@$AXE_CORE" >/dev/null
        for pkg in barcode-detector zxing-wasm axe-core; do
            mkdir "$pkg" && tar -xzf "$pkg"-*.tgz -C "$pkg"
        done
    )
    cp "$work/barcode-detector/package/dist/es/ponyfill.js" \
        "$work/barcode-detector/package/dist/es/zxing-exported.js" "$here/"
    cp "$work/barcode-detector/package/LICENSE" "$here/LICENSE.barcode-detector"
    cp "$work/zxing-wasm/package/dist/reader/zxing_reader.wasm" "$here/"
    cp "$work/zxing-wasm/package/LICENSE" "$here/LICENSE.zxing-wasm"
    mkdir -p "$tests_vendor"
    cp "$work/axe-core/package/axe.min.js" "$tests_vendor/"
    cp "$work/axe-core/package/LICENSE" "$tests_vendor/LICENSE.axe-core"
    cp "$work/axe-core/package/LICENSE-3RD-PARTY.txt" "$tests_vendor/LICENSE-3RD-PARTY.axe-core.txt"
    # LICENSE.zxing-cpp is the Apache License 2.0 text (not in the npm package); kept as is.
fi

status=0
for pin in "${pins[@]}"; do
    file="${pin% *}"
    want="${pin#* }"
    got="$(sha256sum "$root/$file" | cut -d' ' -f1)"
    if [ "$got" = "$want" ]; then
        echo "ok       $file"
    else
        echo "MISMATCH $file: $got, pinned $want" >&2
        status=1
    fi
done

# The ponyfill bundles zxing-wasm's JavaScript, which exports the SHA-256 of the wasm it expects
# (ZXING_WASM_SHA256: the only 64-hex-digit string literal in the bundle).
exported="$(grep -oE '"[0-9a-f]{64}"' "$here/zxing-exported.js" | tr -d '"' | sort -u)"
[ "$(printf '%s\n' "$exported" | wc -l)" = 1 ] || exported=""
wasm="$(sha256sum "$here/zxing_reader.wasm" | cut -d' ' -f1)"
if [ -n "$exported" ] && [ "$exported" = "$wasm" ]; then
    echo "ok       zxing_reader.wasm matches the ponyfill's ZXING_WASM_SHA256"
else
    echo "MISMATCH zxing_reader.wasm $wasm, ZXING_WASM_SHA256 ${exported:-not found}" >&2
    status=1
fi
exit "$status"
