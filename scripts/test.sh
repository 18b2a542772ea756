#!/usr/bin/env bash
# Runs every test of the workspace, with every feature: the command the README gives and
# CI runs. Starts the test servers first (scripts/services.sh); a store whose server is
# missing skips with a printed reason locally and fails under CI=true.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=services.sh
source scripts/services.sh
exec cargo test --workspace --all-features "$@"
