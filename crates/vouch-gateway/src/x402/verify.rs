//! [`Offer`] (what a paid resource accepts) and [`verify`] (whether a payment pays it).

use alloy::{
    eips::BlockId,
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::{
        client::BatchRequest,
        types::{TransactionInput, TransactionRequest},
    },
    sol_types::SolCall as _,
};
use futures_util::future::join;
use serde_json::{Map, Value, json};
use vouch_contracts::{
    PaymentError, PaymentExpectation, TokenDomain, VouchUSD, X402_MIN_VALIDITY, check_payment, check_payment_offline,
};

use super::{
    SCHEME_EXACT, X402_VERSION, X402Error, codes,
    wire::{
        PAYMENT_IDENTIFIER, PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo, network_of,
        payment_identifier_declaration,
    },
};

/// What one paid resource accepts: the job's price in the protocol's token, paid to the protocol contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The chain (`network` = `eip155:<chain_id>`); must be `token.chain_id`.
    pub chain_id: u64,
    /// The token's EIP-712 domain, read from the chain (`TokenDomain::read`): `asset`, `extra.name`,
    /// `extra.version`.
    pub token: TokenDomain,
    /// The payee (`payTo`): the `VouchProtocol` contract.
    pub pay_to: Address,
    /// The exact price, in token base units.
    pub amount: U256,
    /// How long the client makes its authorization valid.
    pub max_timeout_seconds: u64,
    /// The URL of the paid resource (`resource.url`).
    pub resource_url: String,
    /// What it is (`resource.description`).
    pub description: String,
}

impl Offer {
    /// The CAIP-2 network, `eip155:<chain_id>`.
    pub fn network(&self) -> String {
        network_of(self.chain_id)
    }

    /// The payment option: scheme `exact`, `network` `eip155:<id>`, `amount` (decimal string), `asset` = the
    /// token, `payTo`, `maxTimeoutSeconds`, `extra` = `{name, version}` of the token's EIP-712 domain.
    pub fn requirements(&self) -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME_EXACT.to_owned(),
            network: self.network(),
            amount: self.amount,
            asset: self.token.token,
            pay_to: self.pay_to,
            max_timeout_seconds: self.max_timeout_seconds,
            extra: Some(Map::from_iter([
                ("name".to_owned(), json!(self.token.name)),
                ("version".to_owned(), json!(self.token.version)),
            ])),
        }
    }

    /// The `402` answer: `x402Version` 2, `resource` `{url, description, mimeType: "application/json"}`,
    /// `accepts` = [[`Self::requirements`]], the `error` if a payment was refused, and the `payment-identifier`
    /// extension declared (optional), so official clients may send an idempotency key.
    pub fn payment_required(&self, error: Option<&str>) -> PaymentRequired {
        PaymentRequired {
            x402_version: X402_VERSION,
            error: error.map(str::to_owned),
            resource: ResourceInfo {
                url: self.resource_url.clone(),
                description: Some(self.description.clone()),
                mime_type: Some("application/json".to_owned()),
            },
            accepts: vec![self.requirements()],
            extensions: Some(Map::from_iter([(PAYMENT_IDENTIFIER.to_owned(), payment_identifier_declaration(false))])),
        }
    }

    /// What `vouch_contracts::check_payment` requires of the authorization.
    pub fn expectation(&self) -> PaymentExpectation {
        PaymentExpectation { pay_to: self.pay_to, amount: self.amount, min_validity: X402_MIN_VALIDITY }
    }
}

/// Whether the payment option a client `accepted` is the one `offered`: every field equal, except `extra`, whose
/// offered keys must be present with equal values (the client may add keys). Checked in the reference order, each
/// with its code (status 402): scheme → `invalid_scheme`, network → `invalid_network`, amount →
/// `invalid_exact_evm_payload_authorization_value_mismatch`, `payTo` → `invalid_exact_evm_recipient_mismatch`,
/// asset and `maxTimeoutSeconds` → `invalid_payload`; `extra.name`/`extra.version` →
/// `invalid_exact_evm_token_name_mismatch`/`…_version_mismatch`, another `extra` key → `invalid_payload`.
pub fn match_accepted(offered: &PaymentRequirements, accepted: &PaymentRequirements) -> Result<(), X402Error> {
    let refused = X402Error::refused;
    if accepted.scheme != offered.scheme {
        return Err(refused(
            codes::INVALID_SCHEME,
            format!("the payment is for scheme {:?}, the offer is {:?}", accepted.scheme, offered.scheme),
        ));
    }
    if accepted.network != offered.network {
        return Err(refused(
            codes::INVALID_NETWORK,
            format!("the payment is for network {:?}, the offer is on {:?}", accepted.network, offered.network),
        ));
    }
    if accepted.amount != offered.amount {
        return Err(refused(
            codes::VALUE_MISMATCH,
            format!("the payment accepted amount {}, the price is {}", accepted.amount, offered.amount),
        ));
    }
    if accepted.pay_to != offered.pay_to {
        return Err(refused(
            codes::RECIPIENT_MISMATCH,
            format!("the payment accepted payTo {}, the offer pays {}", accepted.pay_to, offered.pay_to),
        ));
    }
    if accepted.asset != offered.asset {
        return Err(refused(
            codes::INVALID_PAYLOAD,
            format!("the payment accepted asset {}, the offer is in {}", accepted.asset, offered.asset),
        ));
    }
    if accepted.max_timeout_seconds != offered.max_timeout_seconds {
        return Err(refused(
            codes::INVALID_PAYLOAD,
            format!(
                "the payment accepted maxTimeoutSeconds {}, the offer is {}",
                accepted.max_timeout_seconds, offered.max_timeout_seconds
            ),
        ));
    }
    let empty = Map::new();
    let accepted_extra = accepted.extra.as_ref().unwrap_or(&empty);
    for (key, value) in offered.extra.iter().flatten() {
        match accepted_extra.get(key) {
            Some(got) if got == value => {}
            got => {
                let code = match (key.as_str(), got) {
                    (_, None) => codes::INVALID_PAYLOAD,
                    ("name", Some(_)) => codes::TOKEN_NAME_MISMATCH,
                    ("version", Some(_)) => codes::TOKEN_VERSION_MISMATCH,
                    _ => codes::INVALID_PAYLOAD,
                };
                let got = got.map_or_else(|| "nothing".to_owned(), Value::to_string);
                return Err(refused(code, format!("the payment accepted extra.{key} = {got}, the offer has {value}")));
            }
        }
    }
    Ok(())
}

/// Whether `payload` pays `offer`, in the order of `notes/x402.md`: everything that needs no chain read
/// (`x402Version` 2, `accepted` is the offer ([`match_accepted`]), the token name and version it signed for are the
/// token's), then `vouch_contracts::check_payment` at chain time `now` (signature, `to == payTo`,
/// `validBefore ≥ now + 6 s`, `validAfter ≤ now`, `value == amount`, nonce unused, balance). Returns the payer.
///
/// Errors: 400 (wrong version), 402 with the x402 code (the payment does not pay the offer), 502 (a chain read
/// failed), 500 (the offer's chain id is not its token's, or the token's domain separator is not standard).
pub async fn verify<P: Provider>(
    provider: &P,
    offer: &Offer,
    payload: &PaymentPayload,
    now: u64,
) -> Result<Address, X402Error> {
    if offer.chain_id != offer.token.chain_id {
        return Err(misconfigured(offer));
    }
    verify_requirements(provider, &offer.token, &offer.requirements(), payload, now).await
}

/// The chain half of [`verify`] for a payment that passed [`verify_offline`] (which recovered the EOA signature and
/// checked version, `accepted`, token domain, recipient, window and amount): the offer's chain is its token's, the
/// nonce is unused on the token and the payer holds the amount — both read at once at the latest block, judged in
/// the reference order (the nonce first), with [`verify`]'s errors. [`verify_offline`] then this is [`verify`] for
/// an EOA's payment, with the signature recovered once instead of twice. A payment that failed [`verify_offline`]
/// (an ERC-1271 wallet's) needs [`verify`].
pub async fn verify_chain_state<P: Provider>(
    provider: &P,
    offer: &Offer,
    payload: &PaymentPayload,
) -> Result<Address, X402Error> {
    if offer.chain_id != offer.token.chain_id {
        return Err(misconfigured(offer));
    }
    let auth = &payload.payload.authorization;
    let token = offer.token.token;
    let rpc =
        |what: &str, e: &dyn std::fmt::Display| X402Error::from(PaymentError::Rpc(format!("{token}.{what}(): {e}")));
    // Both reads in one JSON-RPC batch (one HTTP round trip, one request for the node to serve); an endpoint that
    // does not take batches gets them as two requests at once.
    let (used, balance) = match read_state_batched(provider, token, auth).await {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(error = %e, "the payment's chain reads as a JSON-RPC batch failed; reading them one by one");
            let usd = VouchUSD::new(token, provider);
            let used_call = usd.authorizationState(auth.from, auth.nonce);
            let balance_call = usd.balanceOf(auth.from);
            let (used, balance) = join(used_call.call().into_future(), balance_call.call().into_future()).await;
            (used.map_err(|e| e.to_string()), balance.map_err(|e| e.to_string()))
        }
    };
    // The nonce is judged first, as the reference facilitator does.
    if used.map_err(|e| rpc("authorizationState", &e))? {
        return Err(PaymentError::NonceAlreadyUsed { from: auth.from, nonce: auth.nonce }.into());
    }
    let balance = balance.map_err(|e| rpc("balanceOf", &e))?;
    if balance < auth.value {
        return Err(PaymentError::InsufficientBalance { from: auth.from, balance, needed: auth.value }.into());
    }
    Ok(auth.from)
}

/// `token.authorizationState(from, nonce)` and `token.balanceOf(from)` at the latest block, as one JSON-RPC batch;
/// `Err` if the batch failed (or both reads did), else each read's result.
async fn read_state_batched<P: Provider>(
    provider: &P,
    token: Address,
    auth: &vouch_primitives::x402::TransferAuthorization,
) -> Result<(Result<bool, String>, Result<U256, String>), String> {
    let eth_call = |input: Vec<u8>| {
        (TransactionRequest::default().to(token).input(TransactionInput::new(input.into())), BlockId::latest())
    };
    let used_call = VouchUSD::authorizationStateCall { authorizer: auth.from, nonce: auth.nonce };
    let balance_call = VouchUSD::balanceOfCall { account: auth.from };
    let mut batch = BatchRequest::new(provider.client());
    let used = batch.add_call::<_, Bytes>("eth_call", &eth_call(used_call.abi_encode())).map_err(|e| e.to_string())?;
    let balance =
        batch.add_call::<_, Bytes>("eth_call", &eth_call(balance_call.abi_encode())).map_err(|e| e.to_string())?;
    let sent = batch.send().await;
    let (used, balance) = join(used, balance).await;
    sent.map_err(|e| e.to_string())?;
    let used = used
        .map_err(|e| e.to_string())
        .and_then(|r: Bytes| VouchUSD::authorizationStateCall::abi_decode_returns(&r).map_err(|e| e.to_string()));
    let balance = balance
        .map_err(|e| e.to_string())
        .and_then(|r: Bytes| VouchUSD::balanceOfCall::abi_decode_returns(&r).map_err(|e| e.to_string()));
    match (used, balance) {
        // Both failed: most likely the batch itself (an endpoint answering a batch with one error).
        (Err(used), Err(_)) => Err(used),
        read => Ok(read),
    }
}

fn misconfigured(offer: &Offer) -> X402Error {
    X402Error {
        status: 500,
        code: codes::UNEXPECTED_VERIFY_ERROR,
        message: format!(
            "misconfigured offer: chain {} but its token's domain is on chain {}",
            offer.chain_id, offer.token.chain_id
        ),
    }
}

/// Everything [`verify`] checks that needs no chain read: version, `accepted`, the token domain, and the
/// authorization's signature (EOA only), recipient, window and amount at chain time `now`. Returns the payer. A
/// payment that passes still needs [`verify`] (nonce unused, balance, ERC-1271 wallets); one that fails may still be
/// an ERC-1271 wallet's, so callers decide a failure with [`verify`] too.
pub fn verify_offline(offer: &Offer, payload: &PaymentPayload, now: u64) -> Result<Address, X402Error> {
    if payload.x402_version != X402_VERSION {
        return Err(X402Error::malformed(codes::INVALID_X402_VERSION, "this server speaks x402 version 2 only"));
    }
    let offered = offer.requirements();
    match_accepted(&offered, &payload.accepted)?;
    let signed_for = payload.accepted.token_domain().map_err(|e| X402Error { status: 402, ..e })?;
    offer.token.check_domain(&signed_for.name, &signed_for.version).map_err(X402Error::from)?;
    let expect = PaymentExpectation { pay_to: offered.pay_to, amount: offered.amount, min_validity: X402_MIN_VALIDITY };
    let exact = &payload.payload;
    check_payment_offline(&offer.token, &exact.authorization, &exact.signature, &expect, now)
        .map_err(X402Error::from)?;
    Ok(exact.authorization.from)
}

/// [`verify`] against any requirements on `domain`'s token (the facilitator verifies other servers' offers).
pub(super) async fn verify_requirements<P: Provider>(
    provider: &P,
    domain: &TokenDomain,
    offered: &PaymentRequirements,
    payload: &PaymentPayload,
    now: u64,
) -> Result<Address, X402Error> {
    if payload.x402_version != X402_VERSION {
        return Err(X402Error::malformed(
            codes::INVALID_X402_VERSION,
            format!(
                "the payment has x402Version {}; this server speaks version {X402_VERSION} only",
                payload.x402_version
            ),
        ));
    }
    match_accepted(offered, &payload.accepted)?;
    // What the client signed for (accepted.extra, equal to the offer's by now) against the token's own domain.
    let signed_for = payload.accepted.token_domain().map_err(|e| X402Error { status: 402, ..e })?;
    domain.check_domain(&signed_for.name, &signed_for.version).map_err(X402Error::from)?;
    let expect = PaymentExpectation { pay_to: offered.pay_to, amount: offered.amount, min_validity: X402_MIN_VALIDITY };
    let exact = &payload.payload;
    check_payment(provider, domain, &exact.authorization, &exact.signature, &expect, now)
        .await
        .map_err(X402Error::from)?;
    Ok(exact.authorization.from)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn offer() -> Offer {
        Offer {
            chain_id: 31337,
            token: TokenDomain {
                name: "Vouch USD".into(),
                version: "1".into(),
                chain_id: 31337,
                token: Address::repeat_byte(0x11),
            },
            pay_to: Address::repeat_byte(0x22),
            amount: U256::from(10_000),
            max_timeout_seconds: 300,
            resource_url: "http://127.0.0.1:8080/v1/services/1/jobs/0".into(),
            description: "echo".into(),
        }
    }

    #[test]
    fn x402_offer_gives_the_v2_shapes_the_official_client_expects() {
        let required = serde_json::to_value(offer().payment_required(Some("payment required"))).expect("json");
        assert_eq!(required["x402Version"], 2);
        assert_eq!(required["error"], "payment required");
        assert_eq!(
            required["resource"],
            json!({"url": "http://127.0.0.1:8080/v1/services/1/jobs/0", "description": "echo",
                   "mimeType": "application/json"})
        );
        assert_eq!(
            required["accepts"],
            json!([{
                "scheme": "exact",
                "network": "eip155:31337",
                "amount": "10000",
                "asset": Address::repeat_byte(0x11).to_checksum(None),
                "payTo": Address::repeat_byte(0x22).to_checksum(None),
                "maxTimeoutSeconds": 300,
                "extra": {"name": "Vouch USD", "version": "1"},
            }])
        );
        assert_eq!(required["extensions"]["payment-identifier"]["info"], json!({"required": false}));
        assert_eq!(required["extensions"]["payment-identifier"]["schema"]["required"], json!(["required"]));
        assert!(serde_json::to_value(offer().payment_required(None)).expect("json").get("error").is_none());
    }

    #[test]
    fn x402_accepted_must_be_the_offer_except_added_extra_keys() {
        let offered = offer().requirements();
        match_accepted(&offered, &offered).expect("the offer itself");

        let mut more_extra = offered.clone();
        more_extra.extra.as_mut().expect("extra").insert("paymentFlow".into(), json!("x"));
        match_accepted(&offered, &more_extra).expect("extra keys may be added");

        let check = |change: &dyn Fn(&mut PaymentRequirements), code: &str| {
            let mut accepted = offered.clone();
            change(&mut accepted);
            let err = match_accepted(&offered, &accepted).expect_err(code);
            assert_eq!((err.status, err.code), (402, code), "{}", err.message);
        };
        check(&|r| r.scheme = "upto".into(), "invalid_scheme");
        check(&|r| r.network = "eip155:1".into(), "invalid_network");
        check(&|r| r.amount = U256::from(1), "invalid_exact_evm_payload_authorization_value_mismatch");
        check(&|r| r.pay_to = Address::ZERO, "invalid_exact_evm_recipient_mismatch");
        check(&|r| r.asset = Address::ZERO, "invalid_payload");
        check(&|r| r.max_timeout_seconds = 3_600, "invalid_payload");
        check(&|r| r.extra = None, "invalid_payload");
        check(&|r| drop(r.extra.as_mut().expect("extra").remove("version")), "invalid_payload");
        check(
            &|r| drop(r.extra.as_mut().expect("extra").insert("name".into(), json!("USDC"))),
            "invalid_exact_evm_token_name_mismatch",
        );
        check(
            &|r| drop(r.extra.as_mut().expect("extra").insert("version".into(), json!("2"))),
            "invalid_exact_evm_token_version_mismatch",
        );
        // Reference order: the scheme is reported before the amount.
        check(
            &|r| {
                r.scheme = "upto".into();
                r.amount = U256::from(1);
            },
            "invalid_scheme",
        );

        let mut offered_more = offered.clone();
        offered_more.extra.as_mut().expect("extra").insert("serviceId".into(), json!(7));
        let err = match_accepted(&offered_more, &offered).expect_err("an offered key is missing");
        assert_eq!(err.code, "invalid_payload");
    }

    #[test]
    fn x402_requirements_name_the_token_domain() {
        let requirements = offer().requirements();
        assert_eq!(requirements.token_domain().expect("domain"), offer().token);
        let mut no_name = requirements.clone();
        no_name.extra.as_mut().expect("extra").remove("name");
        assert_eq!(no_name.token_domain().expect_err("no name").code, "invalid_payload");
        let signer = alloy::signers::local::PrivateKeySigner::from_bytes(&B256::repeat_byte(3)).expect("key");
        let exact = requirements.authorize(&signer, 1_000, B256::repeat_byte(4)).expect("signs");
        assert_eq!(exact.authorization.valid_before, U256::from(1_300));
        assert_eq!(exact.authorization.valid_after, U256::ZERO);
        assert_eq!((exact.authorization.to, exact.authorization.value), (offer().pay_to, offer().amount));
        assert_eq!(exact.signature.len(), 65);
    }
}
