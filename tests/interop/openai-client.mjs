// Calls a Vouch gateway's OpenAI-compatible routes with the official `openai` Node package, paying with the
// official x402 client: the OpenAI client is given `fetch: wrapFetchWithPayment(fetch, client)`, nothing else
// changes — an agent that already speaks OpenAI only swaps its fetch. Spend controls admit the devnet's token.
//
// Environment: BASE_URL (the gateway's `/v1`), PRIVATE_KEY (0x-hex), TOKEN, CHAIN_ID, MAX_AMOUNT (atomic units per
// payment), MODEL, ENDPOINT (`embeddings` | `chat`), INPUT (the text to embed, or the user message). Prints one JSON
// line: {"answer": <the OpenAI object, including vouch_certificate>, "certificateHeader": <x-vouch-certificate>}
// and exits 0 only when the call succeeded.
import OpenAI from "openai";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`openai-client: set ${name}`);
    process.exit(2);
  }
  return v;
}

const key = need("PRIVATE_KEY");
const chainId = need("CHAIN_ID");
const account = privateKeyToAccount(key.startsWith("0x") ? key : `0x${key}`);
const payments = new x402Client();
registerExactEvmScheme(payments, { signer: account });
payments.setSpendControls({
  allowedAssets: [{ network: `eip155:${chainId}`, asset: need("TOKEN"), maxAmountPerPayment: need("MAX_AMOUNT") }],
});

const openai = new OpenAI({
  baseURL: need("BASE_URL"),
  apiKey: "x402", // the gateway is paid per request; it reads no API key
  fetch: wrapFetchWithPayment(fetch, payments),
  maxRetries: 0,
});

const model = need("MODEL");
const input = need("INPUT");
try {
  const { data, response } =
    need("ENDPOINT") === "embeddings"
      ? await openai.embeddings.create({ model, input: [input], encoding_format: "float" }).withResponse()
      : await openai.chat.completions
          .create({ model, messages: [{ role: "user", content: input }], max_tokens: 16, temperature: 0 })
          .withResponse();
  console.log(JSON.stringify({ answer: data, certificateHeader: response.headers.get("x-vouch-certificate") }));
  process.exit(0);
} catch (error) {
  console.error(`openai-client: ${error.status ?? ""} ${error.message}`);
  process.exit(1);
}
