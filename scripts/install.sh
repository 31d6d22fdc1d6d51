#!/usr/bin/env bash
# Installs everything Hearth needs on a fresh Debian machine (run as root), then builds it.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# clang-format: `npm run lint:native` (the C++ style check that .ci/run runs). nats-server: the
# JetStream broker of a many-host cluster (and the cluster tests). chromium: the dashboard test's
# headless browser. prometheus: `promtool check metrics` in the metrics test.
for pkg in nftables iproute2 bubblewrap crun util-linux clang-format nats-server chromium prometheus; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "install.sh: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The control socket's group (`hearth daemon --socket-group hearth`): its members may use the API
# (docs/api.md, Who may do what). Created once, never with members: an operator adds them.
getent group hearth >/dev/null || {
  echo "install.sh: creating the system group 'hearth' (members may use the control socket)"
  groupadd --system hearth
}

# npm ci installs exactly package-lock.json; better-sqlite3 builds from source here (its
# prebuilt download is unreachable), allowed by package.json's allowScripts. It does not build our
# own addons ("gypfile": false in package.json): `npm run build` below compiles them, once, and
# later builds (`npm test`) skip them while native/ and binding.gyp are unchanged.
npm ci --no-audit --no-fund
node -e "new (require('better-sqlite3'))(':memory:').close()" || {
  echo "install.sh: better-sqlite3 did not build; rebuilding it" >&2
  npm rebuild better-sqlite3
}
npm run build --silent
