#!/usr/bin/env bash
# conformance.store-mysql: runs the store conformance kit against
# store-mysql with a plugins.d-style config written from the MYSQL_*
# environment (tests/services/up mariadb prints it). Missing variables fail.
# usage: run-conformance.sh KIT PLUGIN
set -euo pipefail
kit=$1 plugin=$2
for v in MYSQL_HOST MYSQL_PORT MYSQL_USER MYSQL_PASSWORD MYSQL_DATABASE; do
  [[ -n ${!v:-} ]] || { echo "FAIL: $v is not set; run tests/services/up mariadb" >&2; exit 1; }
done
[[ -x $kit ]] || { echo "FAIL: $kit is not built" >&2; exit 1; }
conf=$(mktemp /tmp/store-mysql-conformance.XXXXXX)
trap 'rm -f "$conf"' EXIT
# The password travels in the environment, not in the file.
cat >"$conf" <<CONF
host = $MYSQL_HOST
port = $MYSQL_PORT
user = $MYSQL_USER
database = $MYSQL_DATABASE
pool_size = 64
connect_timeout = 5
CONF
EXAMPLEIM_MYSQL_PASSWORD=$MYSQL_PASSWORD exec "$kit" store "$plugin" "$conf"
