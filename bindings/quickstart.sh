#!/usr/bin/env bash
# Prints the first fenced code block in LANGUAGE under the "## Quickstart" heading of a README,
# so the test scripts compile and run exactly what the README shows.
# Usage: bindings/quickstart.sh README LANGUAGE
set -euo pipefail
awk -v lang="$2" '
  /^## / { inside = ($0 == "## Quickstart") }
  inside && !open && $0 == "```" lang { open = 1; next }
  open && /^```/ { exit }
  open { print }
' "$1"
