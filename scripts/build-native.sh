#!/usr/bin/env bash
# Builds the native addons (build/Release/*.node, hearth_sandbox.so) and hearth-init with node-gyp, at most once:
# nothing is done when every output exists and the last successful build (build/native.stamp) is
# newer than binding.gyp and every file under native/.
# An existing configuration is reused (make recompiles only what changed); node-gyp's chatter goes
# to build/node-gyp.log, and on failure the log is printed so compiler errors stay visible.
#   scripts/build-native.sh [--force]    (npm run build:native)
set -euo pipefail
cd "$(dirname "$0")/.."

outputs=(build/Release/hearth.node build/Release/hearth_sandbox.so build/Release/hearth_net.node build/Release/hearth_net_probes.node build/Release/hearth-init)
stamp=build/native.stamp

up_to_date() {
  local o
  for o in "${outputs[@]}" "$stamp"; do [ -f "$o" ] || return 1; done
  [ -z "$(find native binding.gyp -newer "$stamp" -print -quit)" ]
}

if [ "${1:-}" != "--force" ] && up_to_date; then
  echo "build-native: addons up to date"
  exit 0
fi

gyp=(node node_modules/node-gyp/bin/node-gyp.js --loglevel=warn)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
status=0
rm -f "$stamp"
mkdir -p build
touch "$stamp.new" # taken before compiling: a file edited meanwhile is rebuilt next time
{
  if [ "${1:-}" = "--force" ] || [ ! -f build/Makefile ] || [ binding.gyp -nt build/Makefile ]; then
    "${gyp[@]}" configure
  fi
  "${gyp[@]}" build -j max
} >"$log" 2>&1 || status=$?
cp "$log" build/node-gyp.log
if [ "$status" -ne 0 ]; then
  grep -v '^gyp info' "$log" >&2
  echo "build-native: node-gyp failed (exit $status); full log: build/node-gyp.log" >&2
  exit "$status"
fi
mv "$stamp.new" "$stamp"
echo "build-native: addons built in $((SECONDS - start)) s (log: build/node-gyp.log)"
