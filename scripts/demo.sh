#!/usr/bin/env bash
# The README's demo: the BLS round trip between Rust and the contracts, on a real local chain.
#
#   1. setup (idempotent), build the `vouch` CLI and the contracts
#   2. start anvil (Prague: EIP-2537 BLS precompiles) on a free loopback port
#   3. deploy KeyRegistry
#   4. `vouch demo`: three operators get BLS keys in EIP-2335 keystores, proofs of possession bound
#      to (chain, registry, operator), and two of them sign one call's result; the aggregate is checked
#   5. each operator registers its key on-chain (the contract checks the PoP), the set's keys are
#      snapshotted into one data contract, and the contract verifies the certificate: true, and false
#      once the signer bitmap is tampered with
#
# The devnet (`vouch devnet up`) replaces this script once the protocol contracts land.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
json() { node -e "const v=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log(eval('v'+process.argv[1]))" "$1"; }

say "building vouch and the contracts"
cargo build --release -p vouch-cli --locked -q
(cd contracts && forge build -q)
VOUCH="$ROOT/target/release/vouch"

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
RPC="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
anvil --hardfork prague --port "$PORT" --host 127.0.0.1 > "$WORK/anvil.log" 2>&1 &
ANVIL=$!
trap 'kill $ANVIL 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do cast chain-id --rpc-url "$RPC" >/dev/null 2>&1 && break; sleep 0.2; done
CHAIN_ID="$(cast chain-id --rpc-url "$RPC")" || { echo "anvil did not start:" >&2; cat "$WORK/anvil.log" >&2; exit 1; }
say "anvil (prague) at $RPC, chain id $CHAIN_ID"

# anvil's well-known development accounts (mnemonic "test test … junk"): never use them elsewhere.
DEPLOYER_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
OP_KEYS=(0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
         0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
         0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6)
OPS=()
for k in "${OP_KEYS[@]}"; do OPS+=("$(cast wallet address --private-key "$k")"); done

REGISTRY="$(cd contracts && forge create src/KeyRegistry.sol:KeyRegistry --rpc-url "$RPC" \
  --private-key "$DEPLOYER_KEY" --broadcast --json | json '.deployedTo')"
say "KeyRegistry deployed at $REGISTRY"

say "vouch demo: keys, proofs of possession, signatures of operators 0 and 2, aggregate"
"$VOUCH" --datadir "$WORK/vouch" demo --chain-id "$CHAIN_ID" --registry "$REGISTRY" --protocol "$REGISTRY" \
  --operator "${OPS[0]}" --operator "${OPS[1]}" --operator "${OPS[2]}" --signers 0,2
CERT="$(ls "$WORK"/vouch/demo-*/certificate.json)"

say "registering the three BLS keys on-chain (the registry checks each proof of possession)"
for i in 0 1 2; do
  pk="$(json ".operators[$i].pubkey" < "$CERT")"
  pop="$(json ".operators[$i].pop" < "$CERT")"
  gas="$(cast send "$REGISTRY" "registerKey(bytes,bytes)" "$pk" "$pop" --rpc-url "$RPC" \
    --private-key "${OP_KEYS[$i]}" --json | json '.gasUsed')"
  echo "  operator $i ${OPS[$i]}: registered, gas $(( gas ))"
done
set_arg="[${OPS[0]},${OPS[1]},${OPS[2]}]"
KEYSET="$(cast call "$REGISTRY" "createKeySet(address[])(address)" "$set_arg" --rpc-url "$RPC" --from "${OPS[0]}")"
cast send "$REGISTRY" "createKeySet(address[])" "$set_arg" --rpc-url "$RPC" --private-key "${OP_KEYS[0]}" >/dev/null
echo "  operator set keys snapshotted at $KEYSET"

DIGEST="$(json '.digest' < "$CERT")"
BITMAP="$(json '.bitmap' < "$CERT")"
SIG="$(json '.signature' < "$CERT")"
say "on-chain verification of the certificate (bitmap $BITMAP, digest $DIGEST)"
ok="$(cast call "$REGISTRY" "verifyAggregate(address,uint256,bytes32,bytes)(bool)" "$KEYSET" "$BITMAP" "$DIGEST" "$SIG" --rpc-url "$RPC")"
# Sent as a transaction too, to show what a verification costs on-chain (the call is a view).
gas="$(cast send "$REGISTRY" "verifyAggregate(address,uint256,bytes32,bytes)" "$KEYSET" "$BITMAP" "$DIGEST" "$SIG" \
  --rpc-url "$RPC" --private-key "$DEPLOYER_KEY" --json | json '.gasUsed')"
echo "  valid certificate:            $ok (gas used as a transaction: $(( gas )))"
bad="$(cast call "$REGISTRY" "verifyAggregate(address,uint256,bytes32,bytes)(bool)" "$KEYSET" 0x7 "$DIGEST" "$SIG" --rpc-url "$RPC")"
echo "  bitmap claims operator 1 too: $bad"
[[ "$ok" == "true" && "$bad" == "false" ]] || { echo "demo FAILED: expected true then false" >&2; exit 1; }
say "demo passed: Rust and the contract agree on keys, PoPs, digests and aggregates"
