#!/usr/bin/env bash
# Builds the connector component: ./build.sh [OUT.wasm]   (default: connector.wasm here)
#
# Contract: $BSS_WIT_DIR, else ./wit in this folder, else ../../wit (the repository's).
# Tools: ComponentizeJS from ./node_modules (pinned in package.json / package-lock.json; run
# `npm ci` here, or scripts/toolchains/javascript.sh from the repository).
#
# WASI features `http` and `fetch-event` are disabled: the host does not link wasi:http, and a
# component importing it is refused ("component imports instance 'wasi:http/types@0.2.x' ...").
# HTTP goes through bss:integration/http instead. stdio, clocks and random stay: the host links
# them empty (stdout/stderr go to its log).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-connector.wasm}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
cd "$here"

if [ -n "${BSS_WIT_DIR:-}" ]; then
  wit="$BSS_WIT_DIR"
elif [ -d ./wit ]; then
  wit="$here/wit"
elif [ -d ../../wit ]; then
  wit="$(cd ../../wit && pwd)"
else
  echo "build.sh: no contract found: set BSS_WIT_DIR to the bss:integration wit folder, or put it in $here/wit" >&2
  exit 2
fi
if [ ! -f "$wit/world.wit" ]; then
  echo "build.sh: $wit has no world.wit; BSS_WIT_DIR must name the folder holding the bss:integration .wit files" >&2
  exit 2
fi

if ! command -v node >/dev/null 2>&1; then
  echo "build.sh: node is missing: install Node.js 18 or newer (e.g. apt-get install nodejs npm), then run 'npm ci' in $here" >&2
  exit 127
fi
componentize="$here/node_modules/.bin/componentize-js"
if [ ! -x "$componentize" ]; then
  echo "build.sh: ComponentizeJS is missing: run 'npm ci' in $here (or scripts/toolchains/javascript.sh)" >&2
  exit 127
fi

# ComponentizeJS reads a WIT folder's *.wit files only; older frozen minors in subfolders are ignored.
"$componentize" connector.js --wit "$wit" --world-name plugin \
  --disable http fetch-event \
  --out "$out"
echo "built $out ($(wc -c <"$out") bytes)"

# Signed when a key is given (`bss-host keys generate --out vendor.key`): BSS_SIGNING_KEY=FILE,
# with bss-host on PATH or named by BSS_HOST_BIN. The signature travels inside the component.
if [ -n "${BSS_SIGNING_KEY:-}" ]; then
  "${BSS_HOST_BIN:-bss-host}" connectors sign "$out" --key "$BSS_SIGNING_KEY"
fi
