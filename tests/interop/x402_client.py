"""Pays a Vouch gateway with the official x402 Python client (PyPI `x402`, httpx integration), exactly as an agent
would: an eth_account key, the `exact` EVM scheme registered for every eip155 network, and one line of spend controls
that admits the devnet's token (the client otherwise only pays its built-in list of stablecoins).

Environment: URL (the job's URL), PRIVATE_KEY (0x-hex), TOKEN (the EIP-3009 token's address), CHAIN_ID, MAX_AMOUNT
(atomic units the payer accepts per payment). Prints one JSON line:
  {"status": <http status>, "answer": <response body>, "paymentResponse": <decoded PAYMENT-RESPONSE or null>}
and exits 0 only on a 200.
"""

import asyncio
import base64
import json
import os
import sys

from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"x402_client: set {name}", file=sys.stderr)
        sys.exit(2)
    return value


async def main() -> int:
    url = need("URL")
    key = need("PRIVATE_KEY")
    token = need("TOKEN")
    chain_id = need("CHAIN_ID")
    max_amount = need("MAX_AMOUNT")

    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(key)))
    client.set_spend_controls(
        {"allowed_assets": [{"network": f"eip155:{chain_id}", "asset": token, "max_amount_per_payment": max_amount}]}
    )

    async with x402HttpxClient(client, timeout=60) as http:
        response = await http.post(
            url,
            content=json.dumps({"message": "hello from the official x402 client"}),
            headers={"content-type": "application/json"},
        )
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    header = response.headers.get("PAYMENT-RESPONSE")
    payment_response = json.loads(base64.b64decode(header)) if header else None
    print(json.dumps({"status": response.status_code, "answer": answer, "paymentResponse": payment_response}))
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
