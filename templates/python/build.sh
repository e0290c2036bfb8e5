#!/usr/bin/env bash
# Builds the Python connector into a WebAssembly component.
#
#   build.sh [OUT.wasm]        (default: connector.wasm beside this script)
#
# The contract is read from $BSS_WIT_DIR, else ./wit beside this script, else ../../wit (the
# repository's). componentize-py (pinned: 0.25.1) is $COMPONENTIZE_PY, else `componentize-py` on
# PATH, else $BSS_TOOLS_DIR/python/bin/componentize-py (BSS_TOOLS_DIR defaults to
# <repo>/target/connector-tools; scripts/toolchains/python.sh installs it there).
set -euo pipefail

PINNED_VERSION="0.25.1"
here="$(cd "$(dirname "$0")" && pwd)"

out="${1:-$here/connector.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

if [ -n "${BSS_WIT_DIR:-}" ]; then
    wit="$BSS_WIT_DIR"
elif [ -d "$here/wit" ]; then
    wit="$here/wit"
elif [ -d "$here/../../wit" ]; then
    wit="$(cd "$here/../../wit" && pwd)"
else
    echo "build.sh: no contract found: set BSS_WIT_DIR to the folder holding world.wit (bss:integration), or put it in $here/wit" >&2
    exit 1
fi
if [ ! -f "$wit/world.wit" ]; then
    echo "build.sh: $wit has no world.wit; BSS_WIT_DIR must name the contract folder (wit/ of the repository)" >&2
    exit 1
fi

tool="${COMPONENTIZE_PY:-}"
if [ -z "$tool" ]; then
    if command -v componentize-py >/dev/null 2>&1; then
        tool="$(command -v componentize-py)"
    else
        repo="$(cd "$here/../.." && pwd)"
        tool="${BSS_TOOLS_DIR:-$repo/target/connector-tools}/python/bin/componentize-py"
    fi
fi
if [ ! -x "$tool" ]; then
    cat >&2 <<MSG
build.sh: componentize-py not found (looked at \$COMPONENTIZE_PY, PATH, and $tool).
Install it, pinned, with one of:
    scripts/toolchains/python.sh            # from the repository: a venv under target/connector-tools/python
    pip install componentize-py==$PINNED_VERSION
MSG
    exit 1
fi
version="$("$tool" --version 2>/dev/null | awk '{print $2}')"
if [ "$version" != "$PINNED_VERSION" ]; then
    echo "build.sh: warning: $tool is componentize-py $version; this template is tested with $PINNED_VERSION" >&2
fi

# componentize-py writes bindings and temporary files next to the app; build from a scratch copy
# so the template folder stays clean and concurrent builds do not collide.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/app.py" "$here/bss_sdk.py" "$work/"
mkdir -p "$(dirname "$out")"
cd "$work"
"$tool" -d "$wit" -w plugin --quiet componentize app -p . -o "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes) with componentize-py $version from $wit"

# Signed when a key is given (`bss-host keys generate --out vendor.key`): BSS_SIGNING_KEY=FILE,
# with bss-host on PATH or named by BSS_HOST_BIN. The signature travels inside the component.
if [ -n "${BSS_SIGNING_KEY:-}" ]; then
  "${BSS_HOST_BIN:-bss-host}" connectors sign "$out" --key "$BSS_SIGNING_KEY"
fi
