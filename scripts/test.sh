#!/usr/bin/env bash
# The project's test command (README, CI): installs what it needs, then runs every test.
#   1. setup (idempotent)
#   2. contracts: forge build, forge test (unit, fuzz, golden vectors) with the gas snapshot check
#   3. Rust: every workspace test (unit, property, golden-vector freshness)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"

echo "== forge build && forge test (contracts/)" >&2
(cd "$ROOT/contracts" && forge build && FORGE_SNAPSHOT_CHECK=true forge test)

echo "== cargo test --workspace" >&2
(cd "$ROOT" && cargo test --workspace --locked)
