#!/bin/sh
# expect-fail.sh KIT PLUGIN CONFIG LINE [KIND]: passes when the kit (for
# KIND, default store) fails on PLUGIN, prints LINE (a FAIL line prefix),
# and ends with its tally.
set -u
out=$("$1" "${5:-store}" "$2" "$3")
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 1 ]; then
  echo "expected the kit to exit 1, it exited $rc"
  exit 1
fi
if ! printf '%s\n' "$out" | grep -qF -- "$4"; then
  echo "expected a line starting '$4'"
  exit 1
fi
if ! printf '%s\n' "$out" | tail -n 1 | grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed$'; then
  echo "expected the last line to be the tally with failures"
  exit 1
fi
echo "the kit caught the broken store"
