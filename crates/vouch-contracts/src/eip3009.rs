//! x402 `exact` payments on EVM: EIP-3009 `TransferWithAuthorization` messages, their EIP-712 hash under the
//! token's domain, signing (for clients and tests) and the checks a gateway or an operator runs before doing paid
//! work, in the order of the x402 reference facilitator (`notes/x402.md`), with its error codes.
//!
//! - [`TransferAuthorization`]: the `payload.authorization` object of an x402 v2 `PaymentPayload` (serde as the
//!   official clients send it: camelCase, decimal-string numbers, `0x` hex; unknown fields are rejected);
//! - [`TokenDomain`]: the token's EIP-712 domain, read from the chain ([`TokenDomain::read`]) and checked against its
//!   `DOMAIN_SEPARATOR()`;
//! - [`check_payment_offline`] (signature, recipient, validity window, amount) and [`check_payment`] (the same, then
//!   the token's nonce state and the payer's balance, and ERC-1271 wallets);
//! - [`PaymentError`], whose [`code`](PaymentError::code) is the x402 `invalidReason`.
//!
//! Signatures are checked as the token checks them (`VouchUSD`, as USDC v2.2): 65-byte `r‖s‖v` ECDSA with low `s`
//! and `v ∈ {27, 28}` recovering `from`; otherwise, only if `from` has code, its ERC-1271 `isValidSignature`
//! (online check only).

use std::{fmt, time::Duration};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{TransactionInput, TransactionRequest},
    signers::{SignerSync as _, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolCall as _, SolStruct as _},
    transports::RpcError,
};
use serde::{Deserialize, Serialize};

pub use vouch_primitives::x402::TransferAuthorization;

use crate::VouchUSD;

mod sol {
    // `sol!` items carry the EIP-3009 / ERC-1271 definitions; their docs are the EIPs.
    #![allow(missing_docs)]

    alloy::sol! {
        /// EIP-3009 transfer authorization, as signed (EIP-712 primary type).
        #[derive(Debug, PartialEq, Eq)]
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }

        /// ERC-1271 signature validation of contract accounts.
        interface IERC1271 {
            function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
        }
    }
}

/// The EIP-712 primary type signed by an x402 `exact` EVM payment.
pub const TRANSFER_WITH_AUTHORIZATION_TYPE: &str = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)";

/// The minimum remaining validity the x402 reference facilitator requires (`validBefore ≥ now + 6 s`).
pub const X402_MIN_VALIDITY: Duration = Duration::from_secs(6);

/// Half the secp256k1 group order: ECDSA signatures with a larger `s` are malleable and refused on-chain.
const SECP256K1N_HALF: U256 =
    U256::from_limbs([0xdfe9_2f46_681b_20a0, 0x5d57_6e73_57a4_501d, 0xffff_ffff_ffff_ffff, 0x7fff_ffff_ffff_ffff]);

/// The ERC-1271 magic value `isValidSignature.selector`.
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// The token's EIP-712 domain as read from the chain: `{name, version, chainId, verifyingContract: token}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenDomain {
    /// The token's `name()` (x402 `extra.name`), e.g. `Vouch USD`.
    pub name: String,
    /// The token's `version()` (x402 `extra.version`), e.g. `1`.
    pub version: String,
    /// The chain id.
    pub chain_id: u64,
    /// The token contract (x402 `asset`).
    pub token: Address,
}

/// What a payment must pay for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentExpectation {
    /// The payee the authorization must name as `to` (x402 `payTo`).
    pub pay_to: Address,
    /// The exact amount (x402 `amount`).
    pub amount: U256,
    /// `validBefore ≥ now + min_validity` is required (x402 uses [`X402_MIN_VALIDITY`], 6 s).
    pub min_validity: Duration,
}

/// Why a signature does not authorize the payment.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SignatureFault {
    /// Not 65 bytes (and `from` is not a contract account that accepts it).
    #[error("expected 65 bytes (r‖s‖v), got {0}")]
    Length(usize),
    /// `v` is neither 27 nor 28.
    #[error("v must be 27 or 28, got {0}")]
    V(u8),
    /// `s` is in the upper half of the curve order (malleable; refused by the token).
    #[error("s is not in the lower half of the curve order")]
    HighS,
    /// No public key recovers from it.
    #[error("no public key recovers from it")]
    Unrecoverable,
    /// It recovers another address: signed by someone else, or for another message or domain (e.g. a wrong token
    /// name or version).
    #[error("it recovers {0}")]
    OtherSigner(Address),
    /// `from` is a contract whose ERC-1271 `isValidSignature` does not return the magic value.
    #[error("the payer's contract does not accept it (ERC-1271)")]
    Erc1271Rejected,
}

/// A payment that must not be accepted, or could not be checked.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// The signature is not the payer's signature of this authorization under the token's domain.
    #[error("invalid signature of the authorization by {from}: {fault}")]
    InvalidSignature {
        /// The payer named by the authorization.
        from: Address,
        /// What is wrong with it.
        fault: SignatureFault,
    },
    /// The authorization pays someone else.
    #[error("the authorization pays {got}, expected {expected}")]
    RecipientMismatch {
        /// The required payee.
        expected: Address,
        /// The authorization's `to`.
        got: Address,
    },
    /// The authorization expires too soon (or has expired).
    #[error("the authorization is valid before {valid_before}, but must be valid until at least {min} (now {now})")]
    ValidBefore {
        /// The authorization's `validBefore`.
        valid_before: U256,
        /// The chain time the check used.
        now: u64,
        /// The smallest acceptable `validBefore` (`now + min_validity`).
        min: u64,
    },
    /// The authorization is not valid yet.
    #[error("the authorization is valid only after {valid_after} (now {now})")]
    ValidAfter {
        /// The authorization's `validAfter`.
        valid_after: U256,
        /// The chain time the check used.
        now: u64,
    },
    /// The authorization's amount is not the price.
    #[error("the authorization pays {got}, expected exactly {expected}")]
    ValueMismatch {
        /// The required amount.
        expected: U256,
        /// The authorization's `value`.
        got: U256,
    },
    /// The token already used (or cancelled) this nonce of the payer.
    #[error("nonce {nonce} of {from} was already used or cancelled")]
    NonceAlreadyUsed {
        /// The payer.
        from: Address,
        /// The nonce.
        nonce: B256,
    },
    /// The payer does not hold the amount.
    #[error("{from} holds {balance}, needs {needed}")]
    InsufficientBalance {
        /// The payer.
        from: Address,
        /// Its token balance.
        balance: U256,
        /// The authorization's `value`.
        needed: U256,
    },
    /// The payment says it signed for another token name than the token's `name()`.
    #[error("the payment signed for token name {got:?}, the token's is {expected:?}")]
    TokenNameMismatch {
        /// The token's name.
        expected: String,
        /// The name the payment names.
        got: String,
    },
    /// The payment says it signed for another token version than the token's `version()`.
    #[error("the payment signed for token version {got:?}, the token's is {expected:?}")]
    TokenVersionMismatch {
        /// The token's version.
        expected: String,
        /// The version the payment names.
        got: String,
    },
    /// The token's `DOMAIN_SEPARATOR()` is not the separator of `{name(), version(), chainId, token}`: it does not
    /// sign EIP-3009 authorizations the way x402 clients do.
    #[error("token {token}: DOMAIN_SEPARATOR() is {on_chain}, but its name, version and chain id give {computed}")]
    DomainSeparatorMismatch {
        /// The token.
        token: Address,
        /// What the token returns.
        on_chain: B256,
        /// What `{name, version, chainId, verifyingContract}` hashes to.
        computed: B256,
    },
    /// A chain read failed: the payment could not be checked (not the payer's fault).
    #[error("chain read failed: {0}")]
    Rpc(String),
    /// Signing failed (client side).
    #[error("signing failed: {0}")]
    Signing(String),
}

impl PaymentError {
    /// The x402 error code (`invalidReason` / `errorReason`) clients understand, from `notes/x402.md`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature { .. } => "invalid_exact_evm_signature",
            Self::RecipientMismatch { .. } => "invalid_exact_evm_recipient_mismatch",
            Self::ValidBefore { .. } => "invalid_exact_evm_payload_authorization_valid_before",
            Self::ValidAfter { .. } => "invalid_exact_evm_payload_authorization_valid_after",
            Self::ValueMismatch { .. } => "invalid_exact_evm_payload_authorization_value_mismatch",
            Self::NonceAlreadyUsed { .. } => "invalid_exact_evm_nonce_already_used",
            Self::InsufficientBalance { .. } => "invalid_exact_evm_insufficient_balance",
            Self::TokenNameMismatch { .. } => "invalid_exact_evm_token_name_mismatch",
            Self::TokenVersionMismatch { .. } => "invalid_exact_evm_token_version_mismatch",
            Self::DomainSeparatorMismatch { .. } | Self::Rpc(_) | Self::Signing(_) => "unexpected_verify_error",
        }
    }

    /// Whether the payment itself is at fault (refuse it: x402 402), as opposed to a failed chain read or a
    /// misconfigured token (retry or answer 5xx).
    pub fn is_payment_fault(&self) -> bool {
        !matches!(self, Self::DomainSeparatorMismatch { .. } | Self::Rpc(_) | Self::Signing(_))
    }
}

fn rpc_error(what: impl fmt::Display, err: impl fmt::Display) -> PaymentError {
    PaymentError::Rpc(format!("{what}: {err}"))
}

impl TokenDomain {
    /// Reads the token's `name()`, `version()` and the chain id, and checks that the token's `DOMAIN_SEPARATOR()`
    /// is the one they give (so hashes computed here are the token's).
    pub async fn read<P: Provider>(provider: &P, token: Address) -> Result<Self, PaymentError> {
        let usd = VouchUSD::new(token, provider);
        let name = usd.name().call().await.map_err(|e| rpc_error(format_args!("{token}.name()"), e))?;
        let version = usd.version().call().await.map_err(|e| rpc_error(format_args!("{token}.version()"), e))?;
        let on_chain = usd
            .DOMAIN_SEPARATOR()
            .call()
            .await
            .map_err(|e| rpc_error(format_args!("{token}.DOMAIN_SEPARATOR()"), e))?;
        let chain_id = provider.get_chain_id().await.map_err(|e| rpc_error("eth_chainId", e))?;
        let domain = Self { name, version, chain_id, token };
        let computed = domain.separator();
        if computed != on_chain {
            return Err(PaymentError::DomainSeparatorMismatch { token, on_chain, computed });
        }
        Ok(domain)
    }

    /// The alloy EIP-712 domain.
    pub fn eip712_domain(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(self.name.clone().into()),
            Some(self.version.clone().into()),
            Some(U256::from(self.chain_id)),
            Some(self.token),
            None,
        )
    }

    /// The EIP-712 domain separator (equals the token's `DOMAIN_SEPARATOR()`).
    pub fn separator(&self) -> B256 {
        self.eip712_domain().separator()
    }

    /// Checks the name and version a payment says it signed for (x402 `accepted.extra.name`/`.version`) against
    /// the token's. A mismatch would otherwise show as an invalid signature.
    pub fn check_domain(&self, offered_name: &str, offered_version: &str) -> Result<(), PaymentError> {
        if offered_name != self.name {
            return Err(PaymentError::TokenNameMismatch { expected: self.name.clone(), got: offered_name.to_owned() });
        }
        if offered_version != self.version {
            return Err(PaymentError::TokenVersionMismatch {
                expected: self.version.clone(),
                got: offered_version.to_owned(),
            });
        }
        Ok(())
    }
}

/// EIP-712 hashing, signing and recovery of an x402 [`TransferAuthorization`] (the wire type lives in
/// `vouch-primitives`, shared by the node, the gateway and clients).
pub trait AuthorizationExt {
    /// The EIP-712 hash of this `TransferWithAuthorization` under `domain`: what the payer signs and the token
    /// recovers from.
    fn signing_hash(&self, domain: &TokenDomain) -> B256;
    /// Signs the authorization (for clients and tests): 65 bytes `r‖s‖v`, low `s`, `v ∈ {27, 28}`, as the token
    /// and x402 clients expect. The signer should be `from`.
    fn sign(&self, signer: &PrivateKeySigner, domain: &TokenDomain) -> Result<Bytes, PaymentError>;
    /// The address whose ECDSA signature `signature` is (65 bytes `r‖s‖v`, low `s`, `v ∈ {27, 28}`, exactly as the
    /// token accepts). The caller compares it with `from`; [`check_payment_offline`] does.
    fn recover(&self, domain: &TokenDomain, signature: &[u8]) -> Result<Address, PaymentError>;
}

fn to_sol(a: &TransferAuthorization) -> sol::TransferWithAuthorization {
    let a = *a;
    {
        sol::TransferWithAuthorization {
            from: a.from,
            to: a.to,
            value: a.value,
            validAfter: a.valid_after,
            validBefore: a.valid_before,
            nonce: a.nonce,
        }
    }
}

impl AuthorizationExt for TransferAuthorization {
    fn signing_hash(&self, domain: &TokenDomain) -> B256 {
        to_sol(self).eip712_signing_hash(&domain.eip712_domain())
    }

    fn sign(&self, signer: &PrivateKeySigner, domain: &TokenDomain) -> Result<Bytes, PaymentError> {
        let signature =
            signer.sign_hash_sync(&self.signing_hash(domain)).map_err(|e| PaymentError::Signing(e.to_string()))?;
        Ok(Bytes::copy_from_slice(&signature.normalized_s().as_bytes()))
    }

    fn recover(&self, domain: &TokenDomain, signature: &[u8]) -> Result<Address, PaymentError> {
        recover_ecdsa(&self.signing_hash(domain), signature)
            .map_err(|fault| PaymentError::InvalidSignature { from: self.from, fault })
    }
}

/// Recovers the signer of `hash` as OpenZeppelin's `ECDSA.tryRecover` does for 65-byte signatures.
fn recover_ecdsa(hash: &B256, signature: &[u8]) -> Result<Address, SignatureFault> {
    let raw: &[u8; 65] = signature.try_into().map_err(|_| SignatureFault::Length(signature.len()))?;
    let v = raw[64];
    if v != 27 && v != 28 {
        return Err(SignatureFault::V(v));
    }
    let signature = alloy::primitives::Signature::from_raw_array(raw).map_err(|_| SignatureFault::V(v))?;
    if signature.s() > SECP256K1N_HALF {
        return Err(SignatureFault::HighS);
    }
    signature.recover_address_from_prehash(hash).map_err(|_| SignatureFault::Unrecoverable)
}

/// The ECDSA signature check: `Ok` if it recovers `from`, else the fault.
fn check_ecdsa(hash: &B256, auth: &TransferAuthorization, signature: &[u8]) -> Result<(), SignatureFault> {
    let recovered = recover_ecdsa(hash, signature)?;
    if recovered == auth.from { Ok(()) } else { Err(SignatureFault::OtherSigner(recovered)) }
}

/// Recipient, validity window and amount, in the reference facilitator's order.
fn check_terms(auth: &TransferAuthorization, expect: &PaymentExpectation, now: u64) -> Result<(), PaymentError> {
    if auth.to != expect.pay_to {
        return Err(PaymentError::RecipientMismatch { expected: expect.pay_to, got: auth.to });
    }
    let min = now.saturating_add(expect.min_validity.as_secs());
    if auth.valid_before < U256::from(min) {
        return Err(PaymentError::ValidBefore { valid_before: auth.valid_before, now, min });
    }
    if auth.valid_after > U256::from(now) {
        return Err(PaymentError::ValidAfter { valid_after: auth.valid_after, now });
    }
    if auth.value != expect.amount {
        return Err(PaymentError::ValueMismatch { expected: expect.amount, got: auth.value });
    }
    Ok(())
}

/// The offline part of [`check_payment`] (no chain reads), for hot paths: the signature is `from`'s ECDSA
/// signature under `domain`, `to == pay_to`, `validBefore ≥ now + min_validity`, `validAfter ≤ now`,
/// `value == amount`. `now` is the chain time (see [`chain_now`]).
///
/// ERC-1271 (smart-contract wallet) signatures need a chain read: they fail here with
/// [`SignatureFault::OtherSigner`] or another [`SignatureFault`]; [`check_payment`] accepts them.
pub fn check_payment_offline(
    domain: &TokenDomain,
    auth: &TransferAuthorization,
    signature: &[u8],
    expect: &PaymentExpectation,
    now: u64,
) -> Result<(), PaymentError> {
    check_ecdsa(&auth.signing_hash(domain), auth, signature)
        .map_err(|fault| PaymentError::InvalidSignature { from: auth.from, fault })?;
    check_terms(auth, expect, now)
}

/// The full check, in the reference facilitator's order: the signature is `from`'s (65-byte ECDSA; or, if `from`
/// has code, accepted by its ERC-1271 `isValidSignature`, as the token does), `to == pay_to`,
/// `validBefore ≥ now + min_validity`, `validAfter ≤ now`, `value == amount`, the nonce is unused on the token
/// (`authorizationState`), and `balanceOf(from) ≥ value`. `now` is the chain's latest block timestamp
/// ([`chain_now`]). Chain reads are at the latest block.
pub async fn check_payment<P: Provider>(
    provider: &P,
    domain: &TokenDomain,
    auth: &TransferAuthorization,
    signature: &[u8],
    expect: &PaymentExpectation,
    now: u64,
) -> Result<(), PaymentError> {
    let hash = auth.signing_hash(domain);
    if let Err(fault) = check_ecdsa(&hash, auth, signature)
        && !erc1271_accepts(provider, auth.from, hash, signature).await?
    {
        return Err(PaymentError::InvalidSignature { from: auth.from, fault });
    }
    check_terms(auth, expect, now)?;

    // Both reads at once (one round trip of latency); the nonce is judged first, as the reference facilitator does.
    let token = VouchUSD::new(domain.token, provider);
    let used_call = token.authorizationState(auth.from, auth.nonce);
    let balance_call = token.balanceOf(auth.from);
    let (used, balance) =
        futures_util::future::join(used_call.call().into_future(), balance_call.call().into_future()).await;
    let used = used.map_err(|e| rpc_error(format_args!("{}.authorizationState()", domain.token), e))?;
    if used {
        return Err(PaymentError::NonceAlreadyUsed { from: auth.from, nonce: auth.nonce });
    }
    let balance = balance.map_err(|e| rpc_error(format_args!("{}.balanceOf()", domain.token), e))?;
    if balance < auth.value {
        return Err(PaymentError::InsufficientBalance { from: auth.from, balance, needed: auth.value });
    }
    Ok(())
}

/// Whether `account` has code and its ERC-1271 `isValidSignature(hash, signature)` returns the magic value, with
/// the token's criterion (OpenZeppelin `SignatureChecker`: a return of ≥ 32 bytes whose first word is the
/// selector). A revert means no; a failed RPC is an error.
async fn erc1271_accepts<P: Provider>(
    provider: &P,
    account: Address,
    hash: B256,
    signature: &[u8],
) -> Result<bool, PaymentError> {
    let code = provider.get_code_at(account).await.map_err(|e| rpc_error("eth_getCode", e))?;
    if code.is_empty() {
        return Ok(false);
    }
    let input = sol::IERC1271::isValidSignatureCall { hash, signature: Bytes::copy_from_slice(signature) }.abi_encode();
    let call = TransactionRequest::default().to(account).input(TransactionInput::new(input.into()));
    match provider.call(call).block(BlockId::latest()).await {
        Ok(out) => {
            let mut magic = [0u8; 32];
            magic[..4].copy_from_slice(&ERC1271_MAGIC);
            Ok(out.len() >= 32 && out[..32] == magic)
        }
        Err(RpcError::ErrorResp(payload)) if payload.message.contains("revert") => Ok(false),
        Err(e) => Err(rpc_error(format_args!("{account}.isValidSignature()"), e)),
    }
}

/// The chain's time for the window checks: the latest block's timestamp.
pub async fn chain_now<P: Provider>(provider: &P) -> Result<u64, PaymentError> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| rpc_error("eth_getBlockByNumber(latest)", e))?
        .ok_or_else(|| PaymentError::Rpc("eth_getBlockByNumber(latest): no block".into()))?;
    Ok(block.header.timestamp)
}
