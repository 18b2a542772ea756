#!/usr/bin/env bash
# Runs every test of the workspace, with every feature: the command the README gives and
# CI runs. Stores whose servers are missing skip with a printed reason locally and fail
# under CI=true.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo test --workspace --all-features "$@"
