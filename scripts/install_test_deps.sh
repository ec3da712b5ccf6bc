#!/usr/bin/env bash
# System packages the test suite needs beyond pip, from Debian's own packages (a browser or a
# database server downloaded at install time by a tool cannot be fetched everywhere the tests run):
#   - headless Chromium for the HTML report test (tests/reports/test_report_browser.py);
#   - the PostgreSQL server binaries (initdb, pg_ctl): rlnas.testing.postgres starts a throwaway
#     server for the PostgreSQL tests (store contract, two drivers on one study, crash and resume);
#   - a C++ compiler, which torch.compile needs on the CPU (tests of RuleOptimizer(fused=True)).
# Safe to run twice; installs only what is missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    # Not root: leave the system alone; the tests that need these skip (CI runs as root and installs them).
    echo "install_test_deps.sh: missing ${missing[*]} and this is not root: the tests that need them will be" \
         "skipped (install them with: sudo apt-get install -y ${missing[*]})" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
