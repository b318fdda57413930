#!/usr/bin/env bash
# The project's test command (README, CI): installs what it needs, then runs every test.
#   1. setup (idempotent)
#   2. contracts: forge build, forge test (unit, fuzz, golden vectors) with the gas snapshot check
#   3. contract artifacts: the ABIs and bytecode committed for the Rust bindings match the Solidity sources
#   4. Rust: every workspace test (unit, property, golden-vector freshness)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"

echo "== forge build && forge test (contracts/)" >&2
(
  cd "$ROOT/contracts"
  # The one behaviour Prague cannot show: on a chain without EIP-2537 verification reverts, never reads false.
  forge test --evm-version cancun --match-test NoEip2537 --out out-cancun --cache-path cache-cancun
  forge build
  # FORGE_SNAPSHOT_CHECK fails the run when a gas number in snapshots/ changes; the git check below
  # catches entries that forge would silently add back or that nobody committed.
  FORGE_SNAPSHOT_CHECK=true forge test --no-match-test NoEip2537
  git rev-parse --is-inside-work-tree >/dev/null || { echo "the gas snapshot check needs a git checkout" >&2; exit 1; }
  if [[ -n "$(git status --porcelain -- snapshots)" ]]; then
    echo "gas snapshots changed or are uncommitted: review contracts/snapshots and commit them" >&2
    git status --porcelain -- snapshots >&2
    exit 1
  fi
)

echo "== contract artifacts are fresh (scripts/export-artifacts.sh)" >&2
(
  cd "$ROOT"
  "$ROOT/scripts/export-artifacts.sh"
  git rev-parse --is-inside-work-tree >/dev/null || { echo "the artifacts check needs a git checkout" >&2; exit 1; }
  untracked="$(git ls-files --others --exclude-standard -- crates/vouch-contracts/artifacts)"
  if ! git diff --exit-code --stat -- crates/vouch-contracts/artifacts >&2 || [[ -n "$untracked" ]]; then
    [[ -z "$untracked" ]] || printf 'untracked: %s\n' $untracked >&2
    echo "artifacts are stale: run scripts/export-artifacts.sh and commit crates/vouch-contracts/artifacts" >&2
    exit 1
  fi
)

echo "== cargo test --workspace" >&2
# candle's quantized kernels synchronise their threads with a spin barrier that collapses when test binaries run
# models in parallel on a small machine (blueprints/textgen/README.md); one thread per model is 2-3x faster here.
# Results do not depend on the thread count (shared/notes/models.md).
(cd "$ROOT" && CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}" cargo test --workspace --locked)
