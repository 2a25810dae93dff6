#!/usr/bin/env bash
# Installs, with apt, every Debian package the build, the tests and the test
# services need and that is not installed yet. Idempotent; quiet when nothing
# is missing. Uses sudo when not root.
#   scripts/deps.sh build    what ./run needs
#   scripts/deps.sh test     what ./test needs (a superset)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=()
while read -r pkg _; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  want+=("$pkg")
done < <(cat "$here/deps/build.apt"; [[ "${1:-build}" == test ]] && cat "$here/deps/test.apt")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
