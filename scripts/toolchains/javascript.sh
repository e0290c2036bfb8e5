#!/usr/bin/env bash
# Installs the JavaScript connector toolchain (ComponentizeJS and jco, pinned in
# templates/javascript/package.json and package-lock.json) into templates/javascript/node_modules.
# Idempotent: does nothing when node_modules already matches the lock file.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/templates/javascript"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "javascript toolchain: node and npm are missing: install Node.js 18 or newer (Debian: apt-get install nodejs npm)" >&2
  exit 127
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
  echo "javascript toolchain: Node.js $(node --version) is too old; ComponentizeJS needs 18 or newer" >&2
  exit 1
fi

# A stamp of the lock file it was installed from: unchanged lock, nothing to do.
stamp="$dir/node_modules/.bss-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/node_modules/.bin/componentize-js" ]; then
  echo "javascript toolchain: up to date ($dir/node_modules)"
  exit 0
fi

echo "javascript toolchain: npm ci in $dir"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
echo "javascript toolchain: componentize-js $("$dir/node_modules/.bin/componentize-js" --version), jco $("$dir/node_modules/.bin/jco" --version)"
