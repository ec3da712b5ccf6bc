#!/usr/bin/env bash
# System packages the test suite needs beyond pip: headless Chromium for the HTML report test
# (tests/reports/test_report_browser.py). Debian's own package, since a browser downloaded at
# install time by a tool cannot be fetched everywhere the tests run. Safe to run twice.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    # Not root: leave the system alone; the browser test skips (CI runs as root and installs it).
    echo "install_test_deps.sh: chromium is missing and this is not root: the browser test will be skipped" \
         "(install it with: sudo apt-get install -y chromium)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
