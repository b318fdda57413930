//! x402 on a real anvil: a payment built and signed as the official v2 client does verifies and names its payer;
//! each bad payment gets its own x402 code and status; the facilitator endpoints over HTTP.

use serde_json::{Value, json};
use vouch_contracts::{
    AuthorizationExt as _, TokenDomain, VouchProtocol, VouchUSD,
    alloy::{
        primitives::{Address, B256, U256, keccak256},
        providers::{DynProvider, Provider, ProviderBuilder},
        signers::local::PrivateKeySigner,
    },
    chain_now,
};
use vouch_gateway::x402::{
    FacilitatorState, Offer, PAYMENT_IDENTIFIER, PaymentPayload, PaymentRequired, PaymentRequirements, X402Error,
    decode_header, decode_payment_signature, encode_header, facilitator_router, payment_identifier, verify,
};
use vouch_primitives::{ServiceId, paid_call_id, x402::TransferAuthorization};
use vouch_testing::TestNetwork;

/// A deterministic test key (never use it elsewhere).
fn key(label: &str) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!("x402 test key {label}").as_bytes())).expect("valid key")
}

fn nonce(label: &str) -> B256 {
    keccak256(format!("x402 test nonce {label}").as_bytes())
}

struct Env {
    net: TestNetwork,
    provider: DynProvider,
    offer: Offer,
    customer: PrivateKeySigner,
}

async fn env() -> Env {
    let net = TestNetwork::builder(vouch_echo::router()).start().await.expect("the network starts");
    let devnet = net.devnet();
    let provider = devnet.read_provider().erased();
    let contracts = devnet.address_book().contracts;
    let token = TokenDomain::read(&provider, contracts.vouch_usd).await.expect("reads the token's domain");
    let offer = Offer {
        chain_id: devnet.chain_id(),
        token,
        pay_to: contracts.protocol,
        amount: U256::from(devnet.jobs()[0].price),
        max_timeout_seconds: 300,
        resource_url: format!("http://127.0.0.1/v1/services/{}/jobs/0", devnet.service_id()),
        description: "echo".into(),
    };
    let customer = devnet.customer().signer().clone();
    Env { net, provider, offer, customer }
}

impl Env {
    async fn now(&self) -> u64 {
        chain_now(&self.provider).await.expect("chain time")
    }

    /// What the official client sends for the offer's `402`, through the header.
    fn pay(&self, signer: &PrivateKeySigner, now: u64, label: &str) -> PaymentPayload {
        let required: PaymentRequired =
            decode_header(&encode_header(&self.offer.payment_required(None))).expect("the 402 header decodes");
        let payload = required.pay(signer, now, nonce(label)).expect("signs");
        decode_payment_signature(&encode_header(&payload)).expect("the payment header decodes")
    }

    /// The offer accepted verbatim, but with `auth` (signed under `domain`) as the authorization.
    fn with_authorization(
        &self,
        auth: TransferAuthorization,
        signer: &PrivateKeySigner,
        domain: &TokenDomain,
    ) -> PaymentPayload {
        let mut payload = self.pay(signer, 0, "template");
        payload.payload.signature = auth.sign(signer, domain).expect("signs");
        payload.payload.authorization = auth;
        payload
    }

    async fn verify(&self, payload: &PaymentPayload) -> Result<Address, X402Error> {
        verify(&self.provider, &self.offer, payload, self.now().await).await
    }

    async fn refused(&self, payload: &PaymentPayload, status: u16, code: &str) {
        let err = self.verify(payload).await.expect_err(code);
        assert_eq!((err.status, err.code), (status, code), "{}", err.message);
    }
}

#[tokio::test]
async fn x402_verify_accepts_a_signed_payment_and_refuses_each_fault_with_its_code() {
    let env = env().await;
    let now = env.now().await;
    let customer = &env.customer;
    let token = &env.offer.token;

    // A payment as the official v2 client builds it verifies and names its payer.
    let paid = env.pay(customer, now, "ok");
    assert_eq!(env.verify(&paid).await.expect("valid"), customer.address());
    assert_eq!(paid.accepted, env.offer.requirements());
    assert!(paid.extensions.as_ref().is_some_and(|e| e.get(PAYMENT_IDENTIFIER).is_some()), "declaration echoed");
    assert_eq!(payment_identifier(&paid).expect("no id"), None);

    // Wrong version.
    env.refused(&PaymentPayload { x402_version: 1, ..paid.clone() }, 400, "invalid_x402_version").await;

    // Wrong amount: in what the client accepted, or only in what it signed.
    let resign = |change: &dyn Fn(&mut PaymentRequirements)| {
        let mut requirements = env.offer.requirements();
        change(&mut requirements);
        PaymentPayload {
            payload: requirements.authorize(customer, now, nonce("resign")).expect("signs"),
            ..paid.clone()
        }
    };
    let cheap = |r: &mut PaymentRequirements| r.amount = U256::from(1);
    let mut accepted_cheap = resign(&cheap);
    cheap(&mut accepted_cheap.accepted);
    let value_mismatch = "invalid_exact_evm_payload_authorization_value_mismatch";
    env.refused(&accepted_cheap, 402, value_mismatch).await;
    env.refused(&resign(&cheap), 402, value_mismatch).await;

    // Wrong payTo: accepted, or signed.
    let elsewhere = |r: &mut PaymentRequirements| r.pay_to = key("thief").address();
    let mut accepted_elsewhere = resign(&elsewhere);
    elsewhere(&mut accepted_elsewhere.accepted);
    env.refused(&accepted_elsewhere, 402, "invalid_exact_evm_recipient_mismatch").await;
    env.refused(&resign(&elsewhere), 402, "invalid_exact_evm_recipient_mismatch").await;

    // Wrong scheme and network.
    let mut upto = paid.clone();
    upto.accepted.scheme = "upto".into();
    env.refused(&upto, 402, "invalid_scheme").await;
    let mut mainnet = paid.clone();
    mainnet.accepted.network = "eip155:1".into();
    env.refused(&mainnet, 402, "invalid_network").await;

    // Expired (less than the 6 s the reference facilitator requires) and not yet valid.
    let auth = paid.payload.authorization;
    let now = env.now().await;
    let expired = TransferAuthorization { valid_before: U256::from(now + 3), nonce: nonce("expired"), ..auth };
    env.refused(
        &env.with_authorization(expired, customer, token),
        402,
        "invalid_exact_evm_payload_authorization_valid_before",
    )
    .await;
    let early = TransferAuthorization { valid_after: U256::from(now + 120), nonce: nonce("early"), ..auth };
    env.refused(
        &env.with_authorization(early, customer, token),
        402,
        "invalid_exact_evm_payload_authorization_valid_after",
    )
    .await;

    // Signed for another token name: named so in `accepted.extra`, or only in the signature.
    let usdc = TokenDomain { name: "USD Coin".into(), ..token.clone() };
    let usdc_requirements = |r: &mut PaymentRequirements| {
        r.extra.as_mut().expect("extra").insert("name".into(), json!("USD Coin"));
    };
    let mut named_usdc = resign(&usdc_requirements);
    usdc_requirements(&mut named_usdc.accepted);
    env.refused(&named_usdc, 402, "invalid_exact_evm_token_name_mismatch").await;
    let signed_usdc = TransferAuthorization { nonce: nonce("usdc"), ..auth };
    env.refused(&env.with_authorization(signed_usdc, customer, &usdc), 402, "invalid_exact_evm_signature").await;
    let mut v2 = paid.clone();
    v2.accepted.extra.as_mut().expect("extra").insert("version".into(), json!("2"));
    env.refused(&v2, 402, "invalid_exact_evm_token_version_mismatch").await;

    // Signed by someone else than `from`.
    let forged = TransferAuthorization { nonce: nonce("forged"), ..auth };
    env.refused(&env.with_authorization(forged, &key("forger"), token), 402, "invalid_exact_evm_signature").await;

    // A payer without the funds.
    let poor = key("poor");
    assert_eq!(
        VouchUSD::new(token.token, &env.provider).balanceOf(poor.address()).call().await.expect("balance"),
        U256::ZERO
    );
    env.refused(&env.pay(&poor, env.now().await, "poor"), 402, "invalid_exact_evm_insufficient_balance").await;

    // Replayed: once the customer's authorization is used on chain, the same payment is refused.
    let now = env.now().await;
    let replayed = env.pay(customer, now, "replayed");
    env.verify(&replayed).await.expect("valid before use");
    let a = replayed.payload.authorization;
    let wallet = env.net.devnet().provider(customer);
    let receipt = VouchUSD::new(token.token, &wallet)
        .transferWithAuthorization_0(
            a.from,
            a.to,
            a.value,
            a.valid_after,
            a.valid_before,
            a.nonce,
            replayed.payload.signature.clone(),
        )
        .send()
        .await
        .expect("sends")
        .get_receipt()
        .await
        .expect("mined");
    assert!(receipt.status());
    env.refused(&replayed, 402, "invalid_exact_evm_nonce_already_used").await;

    // The chain unavailable: 502, not the payer's fault.
    let down = ProviderBuilder::new().connect_http("http://127.0.0.1:9".parse().expect("url")).erased();
    let err = verify(&down, &env.offer, &paid, now).await.expect_err("no chain");
    assert_eq!((err.status, err.code), (502, "unexpected_verify_error"), "{}", err.message);
    assert!(!err.is_payment_fault());
}

/// Serves `router` on a free local port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn request(payload: &PaymentPayload, requirements: &PaymentRequirements) -> Value {
    json!({ "x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements })
}

#[tokio::test]
async fn x402_facilitator_verifies_supports_and_settles_only_attributed_calls_over_http() {
    let env = env().await;
    let devnet = env.net.devnet();
    let http = reqwest::Client::new();
    let verifier = FacilitatorState::new(env.provider.clone(), env.offer.token.clone(), env.offer.pay_to);
    let submitter = devnet.developer().signer().clone();
    let settler = verifier.clone().with_wallet(devnet.provider(&submitter));
    let verifier_url = serve(facilitator_router(verifier)).await;
    let settler_url = serve(facilitator_router(settler)).await;
    let network = format!("eip155:{}", devnet.chain_id());

    // /supported
    let supported: Value =
        http.get(format!("{verifier_url}/supported")).send().await.expect("answers").json().await.expect("json");
    assert_eq!(
        supported,
        json!({"kinds": [{"x402Version": 2, "scheme": "exact", "network": network}], "extensions": [],
               "signers": {"eip155:*": []}})
    );
    let supported: Value =
        http.get(format!("{settler_url}/supported")).send().await.expect("answers").json().await.expect("json");
    assert_eq!(supported["signers"]["eip155:*"], json!([submitter.address()]));

    // /verify: valid, refused, malformed.
    let requirements = env.offer.requirements();
    let paid = env.pay(&env.customer, env.now().await, "facilitator");
    let (status, body) = post(&http, format!("{verifier_url}/verify"), &request(&paid, &requirements)).await;
    assert_eq!((status, &body), (200, &json!({"isValid": true, "payer": env.customer.address()})));

    let mut dearer = requirements.clone();
    dearer.amount += U256::from(1);
    let (status, body) = post(&http, format!("{verifier_url}/verify"), &request(&paid, &dearer)).await;
    assert_eq!(status, 200);
    assert_eq!(body["isValid"], false);
    assert_eq!(body["invalidReason"], "invalid_exact_evm_payload_authorization_value_mismatch");
    assert_eq!(body["payer"], json!(env.customer.address()));

    let mut not_ours = requirements.clone();
    not_ours.pay_to = key("someone").address();
    let (_, body) = post(&http, format!("{verifier_url}/verify"), &request(&paid, &not_ours)).await;
    assert_eq!(body["invalidReason"], "invalid_exact_evm_recipient_mismatch");

    let (status, body) = post(&http, format!("{verifier_url}/verify"), &json!({"x402Version": 2})).await;
    assert_eq!((status, &body["isValid"], &body["invalidReason"]), (400, &json!(false), &json!("invalid_payload")));
    let (status, body) = post(&http, format!("{verifier_url}/verify"), &json!({"x402Version": 1})).await;
    assert_eq!((status, &body["invalidReason"]), (400, &json!("invalid_x402_version")));

    // /settle without a wallet, and without the Vouch keys: refused, nothing sent.
    let (status, body) = post(&http, format!("{verifier_url}/settle"), &request(&paid, &requirements)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["success"], &body["errorReason"], &body["transaction"], &body["network"]),
        (&json!(false), &json!("unexpected_settle_error"), &json!(""), &json!(network))
    );
    assert_eq!(body["errorMessage"], "this gateway does not submit facilitator settlements");
    let (status, body) = post(&http, format!("{settler_url}/settle"), &request(&paid, &requirements)).await;
    assert_eq!((status, &body["success"], &body["errorReason"]), (200, &json!(false), &json!("invalid_payload")));
    assert!(body["errorMessage"].as_str().expect("message").contains("certificate through the gateway"), "{body}");

    // /settle with the Vouch keys opens the paid call, once.
    let service = devnet.service_id();
    let inputs_hash = keccak256(b"{\"text\":\"hello\"}");
    let mut attributed = requirements.clone();
    let extra = attributed.extra.as_mut().expect("extra");
    extra.insert("serviceId".into(), json!(service));
    extra.insert("jobIndex".into(), json!(0));
    extra.insert("inputsHash".into(), json!(inputs_hash));
    let required = PaymentRequired { accepts: vec![attributed.clone()], ..env.offer.payment_required(None) };
    let payment = required.pay(&env.customer, env.now().await, nonce("settle")).expect("signs");
    let (status, settled) = post(&http, format!("{settler_url}/settle"), &request(&payment, &attributed)).await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["payer"], json!(env.customer.address()));
    assert_eq!(settled["amount"], env.offer.amount.to_string());
    assert_eq!(settled["network"], json!(network));
    let tx: B256 = settled["transaction"].as_str().expect("hash").parse().expect("a tx hash");
    let receipt = env.provider.get_transaction_receipt(tx).await.expect("reads").expect("mined");
    assert!(receipt.status());

    let a = payment.payload.authorization;
    let call_id = paid_call_id(ServiceId(service), 0, a.from, a.nonce);
    let call = VouchProtocol::new(env.offer.pay_to, &env.provider).getCall(call_id.0).call().await.expect("reads");
    assert_eq!((call.status, call.payer, call.inputsHash), (1, a.from, inputs_hash), "open, paid by the customer");

    // A retry is the same success (idempotent per authorization); /verify now sees the nonce used.
    let (status, again) = post(&http, format!("{settler_url}/settle"), &request(&payment, &attributed)).await;
    assert_eq!((status, &again), (200, &settled));
    let (_, body) = post(&http, format!("{settler_url}/verify"), &request(&payment, &attributed)).await;
    assert_eq!(body["invalidReason"], "invalid_exact_evm_nonce_already_used");

    // Requirements below the job price: the payment verifies against them, the protocol refuses the call.
    let mut cheap = attributed.clone();
    cheap.amount = U256::from(1);
    let required = PaymentRequired { accepts: vec![cheap.clone()], ..env.offer.payment_required(None) };
    let payment = required.pay(&env.customer, env.now().await, nonce("cheap")).expect("signs");
    let (status, body) = post(&http, format!("{settler_url}/settle"), &request(&payment, &cheap)).await;
    assert_eq!((status, &body["success"]), (200, &json!(false)));
    assert_eq!(body["errorReason"], "invalid_exact_evm_payload_authorization_value_mismatch", "{body}");
}
