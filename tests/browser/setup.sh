#!/bin/sh
# Installs what the browser tests need, idempotently and quietly:
# playwright-core (pinned by package-lock.json) into node_modules/ here, and
# Debian's chromium when /usr/bin/chromium is missing. Playwright's own browser
# download is never used: the tests drive the system Chromium.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi

# Reinstall only when the lock file changed since the last install.
stamp="$here/node_modules/.eim-lock-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$here/package-lock.json" "$stamp"
fi
