#!/usr/bin/env bash
# The native tests: generates the bindings with componentize-py, then runs tests/test_native.py
# in CPython (3.11+). No component is built; seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
wit="${BSS_WIT_DIR:-$( [ -d "$here/wit" ] && echo "$here/wit" || echo "$repo/wit")}"
tool="${COMPONENTIZE_PY:-$(command -v componentize-py || echo "${BSS_TOOLS_DIR:-$repo/target/connector-tools}/python/bin/componentize-py")}"
[ -x "$tool" ] || { echo "run.sh: componentize-py not found; run scripts/toolchains/python.sh" >&2; exit 1; }
python="${PYTHON:-$(dirname "$tool")/python}"
[ -x "$python" ] || python=python3
bindings="$(mktemp -d)"
trap 'rm -rf "$bindings"' EXIT
"$tool" -d "$wit" -w plugin --quiet bindings "$bindings"
PYTHONPATH="$bindings:$here:$here/tests" PYTHONDONTWRITEBYTECODE=1 "$python" -m unittest test_native "$@"
