#!/usr/bin/env bash
# Exports what the Rust bindings (crates/vouch-contracts) are generated from: for every deployable contract,
# its ABI (<Name>.abi.json) and creation bytecode (<Name>.bin, library placeholders left in; their positions in
# <Name>.link.json), plus the Solidity enums the ABIs name (enums.json), into crates/vouch-contracts/artifacts/.
#
#   1. forge build src   (contracts/; only the sources and their imports, so a test being edited cannot block it;
#                         a cache hit after `forge build`)
#   2. scripts/export-artifacts.js picks one forge artifact per contract, normalises it and writes the files
#
# The output is byte-for-byte deterministic; scripts/test.sh reruns this and fails if the committed files differ.
# See docs/design/bindings.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
command -v forge >/dev/null 2>&1 || { echo "forge not found: run ./scripts/setup.sh" >&2; exit 1; }

echo "== forge build src (contracts/)" >&2
(cd "$ROOT/contracts" && forge build src >&2)

node "$ROOT/scripts/export-artifacts.js" "$ROOT/contracts" "$ROOT/crates/vouch-contracts/artifacts"
