#!/usr/bin/env bash
# Makes sure what the tests need beyond cargo is there: a headless Chromium and a matching
# ChromeDriver for the console's browser tests (host/tests/console.rs; Debian's `chromium` and
# `chromium-driver`, installed when missing), and a PostgreSQL server answering for the store's
# PostgreSQL tests (started when it is installed but down; BSS_TEST_DATABASE_URL names another).
# The connector templates' toolchains (scripts/toolchains/: componentize-py into
# target/connector-tools, ComponentizeJS into templates/javascript/node_modules, both pinned) for
# host/tests/templates.rs.
# `.ci/run` and the README's test command call this script; it does nothing when all is there.
set -euo pipefail

sudo=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    sudo=sudo
fi

if [[ -n "${BSS_CHROMIUM:-}" && -n "${BSS_CHROMEDRIVER:-}" ]]; then
    echo "install-test-deps: using BSS_CHROMIUM=$BSS_CHROMIUM and BSS_CHROMEDRIVER=$BSS_CHROMEDRIVER"
elif [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "install-test-deps: chromium and chromedriver already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install a Chromium and a matching ChromeDriver" \
        "by hand and point BSS_CHROMIUM and BSS_CHROMEDRIVER at them" >&2
    exit 1
elif [[ $(id -u) -ne 0 && -z "$sudo" ]]; then
    echo "install-test-deps: not root and sudo not found; install chromium and" \
        "chromium-driver as root, or set BSS_CHROMIUM and BSS_CHROMEDRIVER" >&2
    exit 1
else
    echo "install-test-deps: installing chromium and chromium-driver with apt-get"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver
fi

# PostgreSQL: only checked (and started when installed here); the tests say how to point them
# at a server when none answers.
if [[ -n "${BSS_TEST_DATABASE_URL:-}" ]]; then
    echo "install-test-deps: PostgreSQL tests use BSS_TEST_DATABASE_URL"
elif command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "install-test-deps: PostgreSQL answers on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
    for version in /etc/postgresql/*; do
        echo "install-test-deps: starting PostgreSQL $(basename "$version")"
        $sudo pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
else
    echo "install-test-deps: no PostgreSQL answers on 127.0.0.1:5432; the PostgreSQL tests will" \
        "fail until one does, or BSS_TEST_DATABASE_URL names one" >&2
fi

# The templates' toolchains (pinned; each script is quick when its tool is already there).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/toolchains/python.sh"
"$here/toolchains/javascript.sh"
