#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs
# unit tests, the integration tests (simulator, real registries, real cpln
# CLI) and the benchmarks' smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --all-targets --locked
