//! The x402 v2 wire types, their headers, the `payment-identifier` extension and client-side signing.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};
use vouch_contracts::{AuthorizationExt as _, TokenDomain};
use vouch_primitives::x402::TransferAuthorization;

use super::{SCHEME_EXACT, X402_VERSION, X402Error, codes};

/// The largest header value decoded (base64 characters); an official client's payment is about 1.5 KiB.
const MAX_HEADER_LEN: usize = 64 * 1024;

/// The key of the `payment-identifier` extension in `extensions`.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// The shortest valid payment identifier.
pub const PAYMENT_ID_MIN_LEN: usize = 16;

/// The longest valid payment identifier.
pub const PAYMENT_ID_MAX_LEN: usize = 128;

/// What a paid resource accepts: one payment option of a `402` (`accepts[i]`), echoed verbatim by the client as
/// the payload's `accepted`.
///
/// JSON: `{"scheme":"exact","network":"eip155:31337","amount":"10000","asset":"0x…","payTo":"0x…",
/// "maxTimeoutSeconds":300,"extra":{"name":"Vouch USD","version":"1"}}` — the amount in token base units as a
/// decimal string. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentRequirements {
    /// The payment scheme: `exact`.
    pub scheme: String,
    /// The CAIP-2 chain: `eip155:<chainId>`.
    pub network: String,
    /// The exact amount, in token base units.
    #[serde(with = "vouch_primitives::x402::decimal")]
    pub amount: U256,
    /// The token (EIP-3009, the EIP-712 `verifyingContract`).
    pub asset: Address,
    /// The payee the authorization must name as `to` (for Vouch, the protocol contract).
    pub pay_to: Address,
    /// How long the client makes its authorization valid (`validBefore = now + maxTimeoutSeconds`).
    pub max_timeout_seconds: u64,
    /// Scheme data: for `exact` on EVM, the token's EIP-712 `name` and `version` (clients refuse to pay without
    /// them); a facilitator `/settle` of Vouch also reads `serviceId`, `jobIndex` and `inputsHash` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// What is paid for (`resource` of a `402` and of a payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The URL of the paid resource.
    pub url: String,
    /// What it is, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MIME type of the paid answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// The `402` answer, sent base64-encoded in the [`PAYMENT_REQUIRED`](super::PAYMENT_REQUIRED) header (the v2 client
/// ignores a body-only `402`).
///
/// JSON: `{"x402Version":2,"error"?:"…","resource":{…},"accepts":[PaymentRequirements…],"extensions"?:{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u32,
    /// Why the previous payment (if any) was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What is paid for.
    pub resource: ResourceInfo,
    /// The payment options; Vouch offers one.
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions the server supports, keyed by name (the client echoes them into its payment): Vouch declares
    /// [`PAYMENT_IDENTIFIER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// The `exact` scheme's signed payment: an EIP-3009 authorization and its signature.
///
/// JSON: `{"authorization":{"from","to","value","validAfter","validBefore","nonce"},"signature":"0x…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExactPayload {
    /// The authorization (values as decimal strings, the nonce as 32 bytes hex).
    pub authorization: TransferAuthorization,
    /// The payer's signature of it: 65-byte ECDSA `r‖s‖v`, or an ERC-1271 signature of a contract wallet.
    pub signature: Bytes,
}

/// A payment, sent base64-encoded in the [`PAYMENT_SIGNATURE`](super::PAYMENT_SIGNATURE) header.
///
/// JSON: `{"x402Version":2,"accepted":PaymentRequirements,"resource"?:{…},"extensions"?:{…},
/// "payload":ExactPayload}`. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentPayload {
    /// Always 2.
    pub x402_version: u32,
    /// The payment option the client chose, verbatim.
    pub accepted: PaymentRequirements,
    /// The resource, echoed from the `402`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The `402`'s extensions echoed, with the client's data (e.g. a [`PAYMENT_IDENTIFIER`] id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
    /// The signed authorization.
    pub payload: ExactPayload,
}

/// The settlement result, sent base64-encoded in the [`PAYMENT_RESPONSE`](super::PAYMENT_RESPONSE) header.
///
/// JSON: `{"success":true,"transaction":"0x…"|"","network":"eip155:…","payer"?:"0x…","errorReason"?:"…",
/// "amount"?:"10000"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementResponse {
    /// Whether the payment is (or will be) settled.
    pub success: bool,
    /// The settlement transaction hash, or `""` when there is none (yet).
    pub transaction: String,
    /// The CAIP-2 chain.
    pub network: String,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Address>,
    /// The x402 error code when `success` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The amount settled, in token base units (decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

impl SettlementResponse {
    /// A successful settlement (`transaction` may be `""` while it is batched).
    pub fn settled(network: impl Into<String>, transaction: impl Into<String>, payer: Address, amount: U256) -> Self {
        Self {
            success: true,
            transaction: transaction.into(),
            network: network.into(),
            payer: Some(payer),
            error_reason: None,
            amount: Some(amount.to_string()),
        }
    }

    /// A failed settlement with its x402 error code.
    pub fn failed(network: impl Into<String>, payer: Option<Address>, reason: &str) -> Self {
        Self {
            success: false,
            transaction: String::new(),
            network: network.into(),
            payer,
            error_reason: Some(reason.to_owned()),
            amount: None,
        }
    }
}

/// The CAIP-2 network of an EVM chain: `eip155:<chainId>`.
pub fn network_of(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// The chain id of an `eip155:<chainId>` network, if it is one.
pub fn chain_id_of(network: &str) -> Option<u64> {
    let digits = network.strip_prefix("eip155:")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// A header value: standard base64 (with padding) of `value`'s JSON.
///
/// The x402 types always serialize; a value whose `Serialize` fails gives `""` (logged), which clients refuse.
pub fn encode_header<T: Serialize>(value: &T) -> String {
    match serde_json::to_vec(value) {
        Ok(json) => BASE64.encode(json),
        Err(err) => {
            tracing::error!(%err, "an x402 header value does not serialize");
            String::new()
        }
    }
}

/// The JSON of a header value: standard base64 with padding (URL-safe or unpadded base64 is refused, as by the
/// official TypeScript client).
fn header_json(header: &str) -> Result<Vec<u8>, X402Error> {
    let header = header.trim();
    if header.is_empty() {
        return Err(X402Error::malformed(codes::INVALID_PAYLOAD, "the header is empty"));
    }
    if header.len() > MAX_HEADER_LEN {
        return Err(X402Error::malformed(
            codes::INVALID_PAYLOAD,
            format!("the header has {} characters, at most {MAX_HEADER_LEN} are accepted", header.len()),
        ));
    }
    BASE64.decode(header).map_err(|e| {
        X402Error::malformed(
            codes::INVALID_PAYLOAD,
            format!("the header is not standard base64 with padding (RFC 4648 §4): {e}"),
        )
    })
}

/// Decodes a header value (standard base64 of JSON) into `T`, e.g. a [`PaymentRequired`] or a
/// [`SettlementResponse`] on the client side. Errors are `400 invalid_payload` naming the faulty field.
pub fn decode_header<T: DeserializeOwned>(header: &str) -> Result<T, X402Error> {
    let json = header_json(header)?;
    let mut de = serde_json::Deserializer::from_slice(&json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| malformed_json(&e))
}

fn malformed_json<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> X402Error {
    let path = err.path().to_string();
    let message = if path == "." {
        format!("the JSON is not an x402 v2 message: {}", err.inner())
    } else {
        format!("`{path}`: {}", err.inner())
    }
    .replace("\n", " ");
    X402Error::malformed(codes::INVALID_PAYLOAD, message)
}

/// Decodes a [`PAYMENT_SIGNATURE`](super::PAYMENT_SIGNATURE) header: standard base64 (padded) of a
/// [`PaymentPayload`]'s JSON. Bad base64, JSON or shape → `400 invalid_payload` (naming the field); an
/// `x402Version` other than 2 → `400 invalid_x402_version`.
pub fn decode_payment_signature(header: &str) -> Result<PaymentPayload, X402Error> {
    let json = header_json(header)?;
    let value: Value = serde_json::from_slice(&json).map_err(|e| {
        X402Error::malformed(codes::INVALID_PAYLOAD, format!("the header's base64 does not hold JSON: {e}"))
    })?;
    payload_from_value(value)
}

/// Checks `x402Version` (so a v1 payment is told so, not that its shape is wrong), then the shape.
pub(super) fn payload_from_value(value: Value) -> Result<PaymentPayload, X402Error> {
    check_version_field(&value, "the payment")?;
    serde_path_to_error::deserialize(value).map_err(|e| malformed_json(&e))
}

/// The `x402Version` of a JSON object must be 2.
pub(super) fn check_version_field(value: &Value, what: &str) -> Result<(), X402Error> {
    let Value::Object(object) = value else {
        return Err(X402Error::malformed(codes::INVALID_PAYLOAD, format!("{what} is not a JSON object")));
    };
    match object.get("x402Version") {
        Some(v) if v.as_u64() == Some(u64::from(X402_VERSION)) => Ok(()),
        Some(v) => Err(X402Error::malformed(
            codes::INVALID_X402_VERSION,
            format!("{what} has x402Version {v}; this server speaks x402 version {X402_VERSION} only"),
        )),
        None => Err(X402Error::malformed(codes::INVALID_PAYLOAD, format!("{what} has no x402Version"))),
    }
}

/// The `payment-identifier` declaration a server puts in `PaymentRequired.extensions` (under
/// [`PAYMENT_IDENTIFIER`]), as the official `declarePaymentIdentifierExtension(required)` writes it:
/// `{"info":{"required":…},"schema":{JSON Schema of info}}`. The official client adds an id (`info.id`) only when it
/// sees this declaration, and echoes it into the payment's `extensions`.
pub fn payment_identifier_declaration(required: bool) -> Value {
    json!({
        "info": { "required": required },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": { "type": "boolean" },
                "id": {
                    "type": "string",
                    "minLength": PAYMENT_ID_MIN_LEN,
                    "maxLength": PAYMENT_ID_MAX_LEN,
                    "pattern": "^[a-zA-Z0-9_-]+$",
                },
            },
            "required": ["required"],
        },
    })
}

/// Whether `id` is a valid payment identifier: 16 to 128 characters of `[A-Za-z0-9_-]`.
pub fn valid_payment_id(id: &str) -> bool {
    (PAYMENT_ID_MIN_LEN..=PAYMENT_ID_MAX_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `payment-identifier` extension: the client's idempotency key, `extensions["payment-identifier"].info.id`.
///
/// `Ok(None)` when there is none: no extensions, no such extension, or the server's declaration echoed without an
/// id (what the official client sends unless told to add one). A present but malformed extension (not an object,
/// no `info` object, `id` not a string, or not 16–128 characters of `[A-Za-z0-9_-]`) is `400 invalid_payload`.
/// Same id and same payment → the cached answer; same id and another payment → `409` (the caller's job).
pub fn payment_identifier(payload: &PaymentPayload) -> Result<Option<String>, X402Error> {
    let bad = |message: String| X402Error::malformed(codes::INVALID_PAYLOAD, message);
    let Some(extensions) = &payload.extensions else { return Ok(None) };
    let extensions = match extensions {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        _ => return Err(bad("`extensions` must be a JSON object".into())),
    };
    let extension = match extensions.get(PAYMENT_IDENTIFIER) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(extension)) => extension,
        Some(_) => return Err(bad(format!("`extensions.{PAYMENT_IDENTIFIER}` must be a JSON object"))),
    };
    let Some(Value::Object(info)) = extension.get("info") else {
        return Err(bad(format!("`extensions.{PAYMENT_IDENTIFIER}` must have an `info` object")));
    };
    match info.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if valid_payment_id(id) => Ok(Some(id.clone())),
        Some(Value::String(id)) => Err(bad(format!(
            "payment identifier {id:?} must be {PAYMENT_ID_MIN_LEN} to {PAYMENT_ID_MAX_LEN} characters of \
             A-Z, a-z, 0-9, '_' and '-'"
        ))),
        Some(_) => Err(bad(format!("`extensions.{PAYMENT_IDENTIFIER}.info.id` must be a string"))),
    }
}

impl PaymentRequirements {
    /// The token's EIP-712 domain these requirements name: `extra.name`, `extra.version`, the chain of `network`
    /// and `asset`. `400 invalid_payload` when `extra` lacks them or the network is not `eip155:<id>`.
    pub fn token_domain(&self) -> Result<TokenDomain, X402Error> {
        let chain_id = chain_id_of(&self.network).ok_or_else(|| {
            X402Error::malformed(codes::INVALID_NETWORK, format!("network {:?} is not eip155:<chainId>", self.network))
        })?;
        let text = |key: &str| {
            self.extra.as_ref().and_then(|extra| extra.get(key)).and_then(Value::as_str).map(str::to_owned).ok_or_else(
                || {
                    X402Error::malformed(
                        codes::INVALID_PAYLOAD,
                        format!("`extra.{key}` (the token's EIP-712 {key}) is missing or not a string"),
                    )
                },
            )
        };
        Ok(TokenDomain { name: text("name")?, version: text("version")?, chain_id, token: self.asset })
    }

    /// Signs a payment of these requirements as the official v2 client does (for `vouch call`, tests and other
    /// Rust clients): `from` = the signer, `to = payTo`, `value = amount`, `validAfter = 0`,
    /// `validBefore = now + maxTimeoutSeconds`, the given 32-byte random `nonce`, under [`Self::token_domain`].
    pub fn authorize(&self, signer: &PrivateKeySigner, now: u64, nonce: B256) -> Result<ExactPayload, X402Error> {
        if self.scheme != SCHEME_EXACT {
            return Err(X402Error::malformed(
                codes::INVALID_SCHEME,
                format!("scheme {:?} is not {SCHEME_EXACT:?}", self.scheme),
            ));
        }
        let domain = self.token_domain()?;
        let authorization = TransferAuthorization {
            from: signer.address(),
            to: self.pay_to,
            value: self.amount,
            valid_after: U256::ZERO,
            valid_before: U256::from(now.saturating_add(self.max_timeout_seconds)),
            nonce,
        };
        let signature = authorization.sign(signer, &domain).map_err(X402Error::from)?;
        Ok(ExactPayload { authorization, signature })
    }
}

impl PaymentRequired {
    /// Pays the first `exact` option on an `eip155` chain as the official v2 client does: the option verbatim as
    /// `accepted`, the resource and the extensions echoed, the authorization of
    /// [`PaymentRequirements::authorize`].
    pub fn pay(&self, signer: &PrivateKeySigner, now: u64, nonce: B256) -> Result<PaymentPayload, X402Error> {
        let accepted = self
            .accepts
            .iter()
            .find(|r| r.scheme == SCHEME_EXACT && chain_id_of(&r.network).is_some())
            .ok_or_else(|| {
                X402Error::malformed(codes::INVALID_SCHEME, "no `exact` payment option on an eip155 chain is offered")
            })?;
        Ok(PaymentPayload {
            x402_version: X402_VERSION,
            accepted: accepted.clone(),
            resource: Some(self.resource.clone()),
            extensions: self.extensions.clone().map(Value::Object),
            payload: accepted.authorize(signer, now, nonce)?,
        })
    }
}

impl PaymentPayload {
    /// Sets the `payment-identifier` id (`extensions["payment-identifier"].info.id`), keeping the echoed
    /// declaration if there is one (the official `appendPaymentIdentifierToExtensions`). `400 invalid_payload` if
    /// `id` is not 16–128 characters of `[A-Za-z0-9_-]`.
    pub fn set_payment_identifier(&mut self, id: &str) -> Result<(), X402Error> {
        if !valid_payment_id(id) {
            return Err(X402Error::malformed(
                codes::INVALID_PAYLOAD,
                format!("payment identifier {id:?} must be 16 to 128 characters of A-Z, a-z, 0-9, '_' and '-'"),
            ));
        }
        let extensions = self.extensions.get_or_insert_with(|| Value::Object(Map::new()));
        if !extensions.is_object() {
            *extensions = Value::Object(Map::new());
        }
        let extension = extensions
            .as_object_mut()
            .map(|e| e.entry(PAYMENT_IDENTIFIER).or_insert_with(|| json!({ "info": { "required": false } })));
        if let Some(extension) = extension {
            if !extension.get("info").is_some_and(Value::is_object) {
                *extension = json!({ "info": { "required": false } });
            }
            if let Some(info) = extension.get_mut("info").and_then(Value::as_object_mut) {
                info.insert("id".into(), Value::String(id.to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirements() -> PaymentRequirements {
        PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:31337".into(),
            amount: U256::from(10_000),
            asset: Address::repeat_byte(0x11),
            pay_to: Address::repeat_byte(0x22),
            max_timeout_seconds: 300,
            extra: Some(Map::from_iter([("name".into(), json!("Vouch USD")), ("version".into(), json!("1"))])),
        }
    }

    fn payload() -> PaymentPayload {
        let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("key");
        let required = PaymentRequired {
            x402_version: 2,
            error: None,
            resource: ResourceInfo { url: "http://localhost/x".into(), description: None, mime_type: None },
            accepts: vec![requirements()],
            extensions: None,
        };
        required.pay(&signer, 1_000, B256::repeat_byte(9)).expect("pays")
    }

    #[test]
    fn x402_headers_round_trip_in_padded_standard_base64() {
        let payload = payload();
        let header = encode_header(&payload);
        assert!(header.ends_with('='), "padded: {header}");
        assert_eq!(decode_payment_signature(&header).expect("decodes"), payload);
        assert_eq!(decode_payment_signature(&format!("  {header}\t")).expect("trims"), payload);

        let settled = SettlementResponse::settled("eip155:1", "0xab", Address::repeat_byte(1), U256::from(5));
        assert_eq!(decode_header::<SettlementResponse>(&encode_header(&settled)).expect("decodes"), settled);
        let json: Value = serde_json::from_slice(&BASE64.decode(encode_header(&settled)).expect("b64")).expect("json");
        assert_eq!(json["amount"], "5");
        assert!(json.get("errorReason").is_none());
    }

    #[test]
    fn x402_headers_refuse_url_safe_and_unpadded_base64() {
        // A payment whose standard base64 contains '+' or '/', so that its URL-safe form differs.
        let (payload, standard) = (0..3)
            .map(|pad| {
                let mut payload = payload();
                payload.resource = Some(ResourceInfo {
                    url: "http://localhost/x".into(),
                    description: Some(format!("{}???~~~>>>", "x".repeat(pad))),
                    mime_type: None,
                });
                let header = encode_header(&payload);
                (payload, header)
            })
            .find(|(_, header)| header.contains('+') || header.contains('/'))
            .expect("'?', '~' and '>' give '+' or '/' at some alignment");
        assert_eq!(decode_payment_signature(&standard).expect("standard"), payload);
        let json = serde_json::to_vec(&payload).expect("json");
        let url_safe = standard.replace('+', "-").replace('/', "_");
        let err = decode_payment_signature(&url_safe).expect_err("URL-safe is refused");
        assert_eq!((err.status, err.code), (400, "invalid_payload"));

        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&json);
        if unpadded.len() % 4 != 0 {
            let err = decode_payment_signature(&unpadded).expect_err("unpadded is refused");
            assert_eq!((err.status, err.code), (400, "invalid_payload"));
        }
    }

    #[test]
    fn x402_decoding_tells_version_from_shape() {
        let bad = |json: &str| decode_payment_signature(&BASE64.encode(json)).expect_err("refused");
        let err = bad("not json");
        assert_eq!((err.status, err.code), (400, "invalid_payload"));
        let err = decode_payment_signature("%%%").expect_err("not base64");
        assert_eq!((err.status, err.code), (400, "invalid_payload"));
        let err = bad(r#"{"x402Version":1,"scheme":"exact","network":"base","payload":{}}"#);
        assert_eq!((err.status, err.code), (400, "invalid_x402_version"));
        let err = bad(r#"{"accepted":{}}"#);
        assert_eq!((err.status, err.code), (400, "invalid_payload"));

        let mut value = serde_json::to_value(payload()).expect("json");
        value["accepted"]["amount"] = json!("1e4");
        let err = bad(&value.to_string());
        assert_eq!((err.status, err.code), (400, "invalid_payload"));
        assert!(err.message.contains("accepted.amount"), "{}", err.message);

        let mut value = serde_json::to_value(payload()).expect("json");
        value["surprise"] = json!(true);
        assert_eq!(bad(&value.to_string()).code, "invalid_payload");
        let mut value = serde_json::to_value(payload()).expect("json");
        value["payload"]["authorization"]["value"] = json!(10_000);
        assert!(bad(&value.to_string()).message.contains("payload.authorization.value"));
    }

    #[test]
    fn x402_payment_identifier_is_read_from_the_official_extension_shape() {
        let with = |extensions: Value| PaymentPayload { extensions: Some(extensions), ..payload() };
        assert_eq!(payment_identifier(&payload()).expect("none"), None);
        // The server's declaration echoed without an id (the official client's default).
        let declaration = json!({ PAYMENT_IDENTIFIER: payment_identifier_declaration(false) });
        assert_eq!(payment_identifier(&with(declaration.clone())).expect("none"), None);
        let mut echoed = declaration.clone();
        echoed[PAYMENT_IDENTIFIER]["info"]["id"] = json!("pay_7d5d747be160e280504c099d984bcfe0");
        assert_eq!(
            payment_identifier(&with(echoed)).expect("valid").as_deref(),
            Some("pay_7d5d747be160e280504c099d984bcfe0")
        );
        assert_eq!(payment_identifier(&with(json!({"bazaar": {}}))).expect("other extensions"), None);

        for bad in [
            json!({ PAYMENT_IDENTIFIER: { "info": { "id": "short_id" } } }),
            json!({ PAYMENT_IDENTIFIER: { "info": { "id": "x".repeat(129) } } }),
            json!({ PAYMENT_IDENTIFIER: { "info": { "id": "pay_7d5d747be160e280!" } } }),
            json!({ PAYMENT_IDENTIFIER: { "info": { "id": 1234567890123456789_u64 } } }),
            json!({ PAYMENT_IDENTIFIER: { "id": "pay_7d5d747be160e280" } }),
            json!({ PAYMENT_IDENTIFIER: "pay_7d5d747be160e280" }),
            json!(["not", "an", "object"]),
        ] {
            let err = payment_identifier(&with(bad.clone())).expect_err("invalid");
            assert_eq!((err.status, err.code), (400, "invalid_payload"), "{bad}");
        }
        assert!(valid_payment_id(&"a".repeat(16)) && valid_payment_id(&"Z-_9".repeat(32)));
        assert!(!valid_payment_id(&"a".repeat(15)) && !valid_payment_id(&"a".repeat(129)));

        let mut paid = with(declaration);
        paid.set_payment_identifier("order_0123456789abcdef").expect("valid id");
        assert_eq!(payment_identifier(&paid).expect("set").as_deref(), Some("order_0123456789abcdef"));
        assert_eq!(paid.extensions.as_ref().expect("ext")[PAYMENT_IDENTIFIER]["info"]["required"], json!(false));
        assert!(paid.set_payment_identifier("too short").is_err());
        let mut bare = payload();
        bare.set_payment_identifier("order_0123456789abcdef").expect("valid id");
        assert_eq!(payment_identifier(&bare).expect("set").as_deref(), Some("order_0123456789abcdef"));
    }

    #[test]
    fn x402_networks_are_caip2_eip155() {
        assert_eq!(network_of(31337), "eip155:31337");
        assert_eq!(chain_id_of("eip155:31337"), Some(31337));
        for bad in ["eip155:", "eip155:0x1", "eip155:01", "solana:1", "base", "eip155:-1"] {
            assert_eq!(chain_id_of(bad), None, "{bad}");
        }
    }
}
