//! x402 wire types shared by every Vouch component: the EIP-3009 authorization an x402 `exact` payment carries.
//! Its EIP-712 hashing, signing and on-chain checks live in `vouch-contracts` (`eip3009`).

use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// The EIP-3009 authorization (values as in the x402 payload).
///
/// JSON as the official x402 clients send it in `payload.authorization`:
/// `{"from":"0x…","to":"0x…","value":"10000","validAfter":"0","validBefore":"1740000000","nonce":"0x…"}` —
/// numbers as decimal strings, addresses and the nonce as `0x` hex (a mixed-case address must have a valid EIP-55
/// checksum). Unknown fields are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferAuthorization {
    /// The payer, who signs.
    #[serde(with = "hex_address")]
    pub from: Address,
    /// The payee (for Vouch, the protocol contract).
    #[serde(with = "hex_address")]
    pub to: Address,
    /// The amount, in token units.
    #[serde(with = "decimal")]
    pub value: U256,
    /// Valid only when the block timestamp is greater than this (seconds).
    #[serde(with = "decimal")]
    pub valid_after: U256,
    /// Valid only when the block timestamp is less than this (seconds).
    #[serde(with = "decimal")]
    pub valid_before: U256,
    /// 32 random bytes chosen by the payer; each (payer, nonce) can be used once on the token.
    #[serde(with = "hex_nonce")]
    pub nonce: B256,
}

impl TransferAuthorization {
    /// Whether `now` (chain seconds) is inside the token's window, `validAfter < now < validBefore`.
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.valid_after < U256::from(now) && U256::from(now) < self.valid_before
    }
}

/// Serde of `U256` as a decimal string (x402 sends `"10000"`): only ASCII digits are accepted. Use with
/// `#[serde(with = "vouch_primitives::x402::decimal")]`.
pub mod decimal {
    use alloy_primitives::U256;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    /// Writes `value` as a decimal string.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a decimal string of ASCII digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!("expected a decimal string, got {s:?}")));
        }
        U256::from_str_radix(&s, 10).map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
    }
}

/// Serde of an address as `0x` + 40 hex digits; a mixed-case address must carry a valid EIP-55 checksum.
/// Serialized checksummed.
mod hex_address {
    use alloy_primitives::Address;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(value: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&value.to_checksum(None))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let Some(digits) = s.strip_prefix("0x") else {
            return Err(D::Error::custom(format!("expected a 0x-prefixed address, got {s:?}")));
        };
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(D::Error::custom(format!("expected 0x and 40 hex digits, got {s:?}")));
        }
        let mixed_case =
            digits.bytes().any(|b| b.is_ascii_lowercase()) && digits.bytes().any(|b| b.is_ascii_uppercase());
        if mixed_case {
            Address::parse_checksummed(&*s, None).map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
        } else {
            s.parse().map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
        }
    }
}

/// Serde of the nonce as `0x` + 64 hex digits.
mod hex_nonce {
    use alloy_primitives::B256;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(value: &B256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<B256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let Some(digits) = s.strip_prefix("0x") else {
            return Err(D::Error::custom(format!("expected a 0x-prefixed nonce, got {s:?}")));
        };
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(D::Error::custom(format!("expected 0x and 64 hex digits, got {s:?}")));
        }
        s.parse().map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
    }
}
