#!/usr/bin/env bash
# No Swift toolchain exists on these machines: this checks what can be checked here, that the
# Swift generation from the built library succeeded and is whole (bindings/test.sh generated
# it into $GEN/swift), so a broken Swift generation fails CI. Nothing here compiles Swift.
set -euo pipefail
swift="$GEN/swift"
for file in E2EE.swift E2EEFFI.h E2EEFFI.modulemap; do
  [ -s "$swift/$file" ] || { echo "swift: $file was not generated" >&2; exit 1; }
done
# Every exported object, the error enum and the listener protocol reach Swift, public
# (unformatted output may break a declaration over lines: match on one line).
flat="$(tr -s '\n ' '  ' < "$swift/E2EE.swift")"
for symbol in 'class Client' 'class Device' 'class LinkRequest' 'enum E2eeError' \
  'protocol EventListener' 'func createPrimaryDevice' 'struct ClientConfig'; do
  grep -Eq "(public|open) $symbol\b" <<<"$flat" \
    || { echo "swift: '$symbol' missing from E2EE.swift" >&2; exit 1; }
done
grep -q 'module E2EEFFI' "$swift/E2EEFFI.modulemap" || { echo "swift: modulemap names no E2EEFFI" >&2; exit 1; }
# Every checksum function the Swift side calls at load exists in the C header.
missing=$(grep -o 'uniffi_e2ee_ffi_checksum_[a-z_0-9]*' "$swift/E2EE.swift" | sort -u \
  | while read -r f; do grep -q "$f" "$swift/E2EEFFI.h" || echo "$f"; done)
[ -z "$missing" ] || { echo "swift: checksums missing from the header: $missing" >&2; exit 1; }
echo "swift: generation checked ($(wc -l < "$swift/E2EE.swift") lines; not compiled: no Swift toolchain here)"
