#!/usr/bin/env bash
# The README's demo: one paid, verified, settled call on a local Vouch network, with nothing but the `vouch` CLI.
#
#   1. setup (idempotent), build the `vouch` CLI
#   2. `vouch devnet up --port 0`: anvil (Prague: EIP-2537 BLS precompiles), the protocol deployed, a developer's
#      blueprint, a customer with vUSD, three staked operators with transaction and BLS keys, an active service
#   3. show the service; the customer calls job 0 (`echo`), paying its price into escrow
#   4. `vouch certify`: the operators' BLS keys sign the call's result, aggregated into a v1 certificate
#   5. `vouch verify` it, `vouch call settle` it, `vouch call show`, an operator claims its fees
#   6. a tampered certificate fails `vouch verify`, with its reason
#   7. `vouch devnet down`
#
# docs/quickstart.md walks through exactly these commands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { node -e "const v=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log(eval('v'+process.argv[1]))" "$1"; }

say "building vouch"
cargo build -p vouch-cli --locked -q
VOUCH="$ROOT/target/debug/vouch"

WORK="$(mktemp -d)"
DATADIR="$WORK/devnet"
UP=""
cleanup() {
  if [[ -n "$UP" ]] && kill -0 "$UP" 2>/dev/null; then
    "$VOUCH" --datadir "$DATADIR" devnet down -q >/dev/null 2>&1 || kill "$UP" 2>/dev/null || true
    wait "$UP" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
v() { printf '$ vouch %s\n' "$*"; "$VOUCH" --datadir "$DATADIR" "$@"; }

say "starting a devnet: vouch devnet up --port 0 --datadir $DATADIR"
"$VOUCH" --datadir "$DATADIR" devnet up --port 0 > "$WORK/up.log" 2>&1 &
UP=$!
for _ in $(seq 300); do
  [[ -f "$DATADIR/devnet.pid" ]] && break
  kill -0 "$UP" 2>/dev/null || { echo "vouch devnet up failed:" >&2; cat "$WORK/up.log" >&2; exit 1; }
  sleep 0.2
done
[[ -f "$DATADIR/devnet.pid" ]] || { echo "the devnet did not start within 60 s:" >&2; cat "$WORK/up.log" >&2; exit 1; }
cat "$WORK/up.log"
v devnet status
OPERATOR0="$(json '.operators[0].account.address' < "$DATADIR/devnet.json")"

say "the service: blueprint 1 run by three staked operators"
v service show 1
v operator status "$OPERATOR0"

say "the customer calls job 0 (echo), paying its price into escrow"
INPUT='{"text":"hello, vouch"}'
v --from customer call 1 0 --input "$INPUT"

say "the operators sign the result with their BLS keys; the aggregate is the certificate"
printf '%s' '{"echo":"hello, vouch"}' > "$WORK/result.json"
v certify 1 --result "@$WORK/result.json" --signers 0,1,2 --output "$WORK/certificate.json"
cat "$WORK/certificate.json"

say "anyone verifies it against the chain: service, call, signers, quorum, BLS aggregate"
v verify "$WORK/certificate.json"

say "settling the call with it (the contract checks it again) and showing the call"
v --from customer call settle "$WORK/certificate.json"
v call show 1

say "operator 0 claims its commission and its pool's rewards"
v --from operator-0 claim

say "a tampered certificate (another result hash) fails verification"
json_edit() { node -e "const f=require('fs');const c=JSON.parse(f.readFileSync(process.argv[1]));c.resultHash='0x'+'ab'.repeat(32);f.writeFileSync(process.argv[2],JSON.stringify(c,null,2))" "$1" "$2"; }
json_edit "$WORK/certificate.json" "$WORK/tampered.json"
if v verify "$WORK/tampered.json"; then
  echo "demo FAILED: a tampered certificate verified" >&2
  exit 1
fi
echo "(rejected, as it must be)"

say "stopping the devnet"
v devnet down
wait "$UP"
UP=""
say "demo passed: a call paid, certified by staked operators, verified, settled and claimed"
