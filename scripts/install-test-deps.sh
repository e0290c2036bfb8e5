#!/usr/bin/env bash
# Installs what the browser tests (host/tests/console.rs) need: a headless Chromium and a matching
# ChromeDriver (Debian's `chromium` and `chromium-driver` packages). `.ci/run` and the README's test
# command call this script; it does nothing when both binaries are already there.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "install-test-deps: chromium and chromedriver already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install a Chromium and a matching ChromeDriver" \
        "by hand and point BSS_CHROMIUM and BSS_CHROMEDRIVER at them" >&2
    exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=sudo
    else
        echo "install-test-deps: not root and sudo not found; install chromium and" \
            "chromium-driver as root, or set BSS_CHROMIUM and BSS_CHROMEDRIVER" >&2
        exit 1
    fi
fi

echo "install-test-deps: installing chromium and chromium-driver with apt-get"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
