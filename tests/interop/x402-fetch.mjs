// Pays a Vouch gateway with the official x402 TypeScript client (@x402/fetch + @x402/evm), exactly as an agent
// would: a viem local account, the `exact` EVM scheme registered for every eip155 network, and one line of spend
// controls that admits the devnet's token (the client otherwise only pays its built-in list of stablecoins).
//
// Environment: URL (the job's URL), PRIVATE_KEY (0x-hex), TOKEN (the EIP-3009 token's address), CHAIN_ID,
// MAX_AMOUNT (atomic units the payer accepts per payment). Prints one JSON line:
//   {"status": <http status>, "answer": <response body>, "paymentResponse": <decoded PAYMENT-RESPONSE or null>}
// and exits 0 only on a 200.
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`x402-fetch: set ${name}`);
    process.exit(2);
  }
  return v;
}

const url = need("URL");
const key = need("PRIVATE_KEY");
const token = need("TOKEN");
const chainId = need("CHAIN_ID");
const maxAmount = need("MAX_AMOUNT");

const account = privateKeyToAccount(key.startsWith("0x") ? key : `0x${key}`);
const client = new x402Client();
registerExactEvmScheme(client, { signer: account });
client.setSpendControls({
  allowedAssets: [{ network: `eip155:${chainId}`, asset: token, maxAmountPerPayment: maxAmount }],
});
const fetchWithPayment = wrapFetchWithPayment(fetch, client);

const response = await fetchWithPayment(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ message: "hello from the official x402 client" }),
});
const text = await response.text();
let answer;
try {
  answer = JSON.parse(text);
} catch {
  answer = text;
}
const header = response.headers.get("PAYMENT-RESPONSE");
const paymentResponse = header ? decodePaymentResponseHeader(header) : null;
console.log(JSON.stringify({ status: response.status, answer, paymentResponse }));
process.exit(response.status === 200 ? 0 : 1);
