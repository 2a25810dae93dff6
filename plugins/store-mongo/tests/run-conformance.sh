#!/bin/sh
# run-conformance.sh KIT PLUGIN DROPDB: runs the conformance kit on
# store-mongo against $MONGO_URI (required: the test fails without it), in a
# scratch database of its own that is dropped afterwards.
set -u
kit=$1
plugin=$2
dropdb=$3
if [ -z "${MONGO_URI:-}" ]; then
  echo "FAIL: MONGO_URI is not set (start the service: tests/services/up ferretdb)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/exampleim-mongo-kit.XXXXXX) || exit 1
db=exampleim_kit_$(echo "${dir##*.}" | tr A-Z a-z)
trap '"$dropdb" "$MONGO_URI" "$db" >/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/store.conf" <<CONF
# written by run-conformance.sh
plugin = store-mongo
uri = env:MONGO_URI
database = $db
pool_size = 16
CONF
"$kit" store "$plugin" "$dir/store.conf"
