#!/bin/sh
# run-sqlite.sh KIT PLUGIN: runs the conformance kit on store-sqlite with a
# database in a fresh temporary directory, twice: the second run finds the
# first run's data and must pass all the same (the kit's run prefix).
set -u
kit=$1
plugin=$2
dir=$(mktemp -d /tmp/exampleim-sqlite-kit.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
cat > "$dir/store.conf" <<CONF
# written by run-sqlite.sh
plugin = store-sqlite
path = $dir/kit.db
synchronous = full
CONF
for run in 1 2; do
  echo "# run $run on $dir/kit.db"
  "$kit" store "$plugin" "$dir/store.conf" || exit 1
done
