//! x402 v2 payments (scheme `exact`, EIP-3009 on the protocol's token), as the official clients speak them
//! (`notes/x402.md`, DESIGN.md §4.1):
//!
//! - the wire types ([`PaymentRequired`], [`PaymentRequirements`], [`PaymentPayload`], [`SettlementResponse`]) and
//!   their headers ([`PAYMENT_REQUIRED`], [`PAYMENT_SIGNATURE`], [`PAYMENT_RESPONSE`]: standard, padded base64 of the
//!   JSON; [`encode_header`], [`decode_payment_signature`], [`decode_header`]);
//! - [`Offer`]: what one paid resource costs (a job's price, `payTo` = the protocol contract, the token's EIP-712
//!   name and version in `extra`), and the `402` it answers ([`Offer::payment_required`]);
//! - [`verify`]: everything about a payment except the chain reads ([`match_accepted`]: the payload's `accepted` is
//!   what was offered), then the chain reads (`vouch_contracts::check_payment`: signature, recipient, validity
//!   window, amount, nonce unused, balance), in the reference facilitator's order, with its error codes
//!   ([`codes`]);
//! - the `payment-identifier` extension ([`payment_identifier`]): the client's idempotency key;
//! - [`facilitator_router`]: the facilitator HTTP API (`POST /verify`, `POST /settle`, `GET /supported`) for other
//!   x402 servers. `/settle` only opens paid calls (`VouchProtocol.openPaidCall`): a bare transfer to the protocol
//!   would be unattributed surplus.
//!
//! The wire types are our own small serde types rather than the `x402-types` crate's: ours are exactly the v2
//! `exact` EVM shapes with typed fields (addresses, a decimal `U256` amount, the EIP-3009 authorization of
//! `vouch-primitives`) and reject unknown fields in what is security-relevant (DESIGN.md §5), and decoding tells a
//! wrong `x402Version` (`invalid_x402_version`) from a malformed payload (`invalid_payload`), where `x402-types`'
//! generic types leave addresses and amounts as strings and fail both with one serde error; it would also add
//! `rust_decimal`, `serde_with` and `async-trait` to the gateway for no gain.

mod facilitator;
mod verify;
mod wire;

pub use facilitator::{
    FacilitatorState, FacilitatorWallet, SETTLE_RECEIPT_TIMEOUT, SettleResponse, SupportedKind, SupportedResponse,
    VerifyResponse, facilitator_router,
};
pub use verify::{Offer, match_accepted, verify, verify_chain_state, verify_offline};
pub use wire::{
    ExactPayload, PAYMENT_ID_MAX_LEN, PAYMENT_ID_MIN_LEN, PAYMENT_IDENTIFIER, PaymentPayload, PaymentRequired,
    PaymentRequirements, ResourceInfo, SettlementResponse, chain_id_of, decode_header, decode_payment_signature,
    encode_header, network_of, payment_identifier, payment_identifier_declaration, valid_payment_id,
};

/// The x402 protocol version Vouch speaks (v1 cannot name a local chain: `notes/x402.md`).
pub const X402_VERSION: u32 = 2;

/// The only scheme Vouch offers: `exact` (EIP-3009 `transferWithAuthorization` of the exact price).
pub const SCHEME_EXACT: &str = "exact";

/// Server → client header of a `402`: base64 of [`PaymentRequired`].
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";

/// Client → server header of a paid retry: base64 of [`PaymentPayload`].
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";

/// Server → client header of a paid answer (and of a failed settlement, with `success: false`): base64 of
/// [`SettlementResponse`].
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";

/// The x402 error codes (`invalidReason` / `errorReason`) this module answers; payment checks on chain answer
/// `vouch_contracts::PaymentError::code`'s.
pub mod codes {
    /// The payment (header or body) is not a well-formed x402 v2 `exact` payment, or names what was not offered.
    pub const INVALID_PAYLOAD: &str = "invalid_payload";
    /// `x402Version` is not 2.
    pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
    /// The payment's scheme is not `exact`.
    pub const INVALID_SCHEME: &str = "invalid_scheme";
    /// The payment is for another network.
    pub const INVALID_NETWORK: &str = "invalid_network";
    /// The payment is for another amount.
    pub const VALUE_MISMATCH: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
    /// The payment pays someone else.
    pub const RECIPIENT_MISMATCH: &str = "invalid_exact_evm_recipient_mismatch";
    /// The payment signed for another token name.
    pub const TOKEN_NAME_MISMATCH: &str = "invalid_exact_evm_token_name_mismatch";
    /// The payment signed for another token version.
    pub const TOKEN_VERSION_MISMATCH: &str = "invalid_exact_evm_token_version_mismatch";
    /// The authorization's nonce was already used.
    pub const NONCE_ALREADY_USED: &str = "invalid_exact_evm_nonce_already_used";
    /// The payment could not be checked (chain unavailable, misconfiguration).
    pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
    /// The settlement failed for a reason that is not the payment's.
    pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
    /// The settlement transaction was sent but not mined in time.
    pub const SETTLEMENT_PENDING: &str = "settlement_pending";
}

/// A payment refused, or one that could not be checked: an HTTP status, the x402 error code and a precise message.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{code}: {message}")]
pub struct X402Error {
    /// 400: malformed payment (bad base64, JSON or shape, wrong version); 402: payment refused (it does not pay
    /// what was offered, or the chain says it cannot); 502: the chain could not be read; 500: misconfiguration.
    pub status: u16,
    /// The x402 error code (see [`codes`] and `vouch_contracts::PaymentError::code`).
    pub code: &'static str,
    /// What is wrong, for the client.
    pub message: String,
}

impl X402Error {
    /// A malformed payment (`400`).
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: 400, code, message: message.into() }
    }

    /// A well-formed payment that is refused (`402`).
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: 402, code, message: message.into() }
    }

    /// The payment could not be checked: the chain is unavailable (`502`).
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: 502, code, message: message.into() }
    }

    /// Whether the payment itself is at fault (`400`/`402`), rather than the chain or this server.
    pub fn is_payment_fault(&self) -> bool {
        matches!(self.status, 400 | 402)
    }
}

impl From<vouch_contracts::PaymentError> for X402Error {
    fn from(err: vouch_contracts::PaymentError) -> Self {
        let status = if err.is_payment_fault() {
            402
        } else if matches!(err, vouch_contracts::PaymentError::Rpc(_)) {
            502
        } else {
            500
        };
        Self { status, code: err.code(), message: err.to_string() }
    }
}
