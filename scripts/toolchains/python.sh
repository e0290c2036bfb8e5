#!/usr/bin/env bash
# Installs the Python connector toolchain: componentize-py, pinned, in a venv under
# $BSS_TOOLS_DIR/python (default <repo>/target/connector-tools/python).
# Idempotent: does nothing (fast) when the pinned version is already installed.
# Needs python3 (>= 3.9, with the venv module) and access to PyPI.
set -euo pipefail

COMPONENTIZE_PY_VERSION="0.25.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools_dir="${BSS_TOOLS_DIR:-$repo_root/target/connector-tools}"
venv="$tools_dir/python"
bin="$venv/bin/componentize-py"

if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null | awk '{print $2}')" = "$COMPONENTIZE_PY_VERSION" ]; then
    echo "python toolchain: componentize-py $COMPONENTIZE_PY_VERSION already in $venv"
    exit 0
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [ -z "$python" ]; then
    echo "python toolchain: python3 not found; install Python 3.9+ (e.g. apt-get install python3 python3-venv)" >&2
    exit 1
fi

echo "python toolchain: installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
mkdir -p "$tools_dir"
if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "python toolchain: '$python -m venv' failed; install the venv module (e.g. apt-get install python3-venv)" >&2
        exit 1
    fi
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
"$bin" --version
