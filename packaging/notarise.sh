#!/usr/bin/env bash
# Notarise one file (a .zip of the app, or the .dmg) with Apple and wait for the answer;
# fails unless Apple accepted it, printing Apple's log of what it refused.
#
#     packaging/notarise.sh FILE
#
# Needs APPLE_ID, APPLE_TEAM_ID and APPLE_APP_PASSWORD (an app-specific password) in the
# environment. Used by .github/workflows/release.yml on macOS; stapling is the caller's.
set -euo pipefail

file="$1"
for name in APPLE_ID APPLE_TEAM_ID APPLE_APP_PASSWORD; do
  if [ -z "${!name:-}" ]; then
    echo "notarise.sh: $name is not set" >&2
    exit 1
  fi
done
credentials=(--apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD")
answer="$(mktemp)"
trap 'rm -f "$answer"' EXIT

# `notarytool submit --wait` can end with status 0 although Apple found the file Invalid:
# the status in its answer decides
xcrun notarytool submit "$file" "${credentials[@]}" --wait --output-format json > "$answer"
read -r status submission < <(python3 - "$answer" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as handle:
    answer = json.load(handle)
print(answer.get("status", "?"), answer.get("id", "?"))
EOF
)
echo "Notarisation of $(basename "$file"): $status (submission $submission)"
if [ "$status" != "Accepted" ]; then
  if [ "$submission" != "?" ]; then
    xcrun notarytool log "$submission" "${credentials[@]}" || true
  fi
  echo "::error::Apple did not accept $(basename "$file") for notarisation: $status"
  exit 1
fi
