//! Token amounts in human units: `10.5 vUSD`, `1000 VST`.
//!
//! An amount is a decimal number of whole tokens, optionally followed by the token's symbol. It is converted to base
//! units with the token's `decimals()` exactly: more decimal places than the token has, a negative number, an
//! exponent or a value beyond 256 bits is refused, never rounded. Amounts are printed the same way (trailing zeros
//! trimmed, no thousands separators), so whatever the CLI prints can be pasted back into it.

use alloy_primitives::{Address, U256};

/// An ERC-20 token as the CLI shows it: address, symbol and decimals read from the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The token contract.
    pub(crate) address: Address,
    /// `symbol()`, e.g. `vUSD`.
    pub(crate) symbol: String,
    /// `decimals()`, e.g. 6.
    pub(crate) decimals: u8,
}

/// Why a text is not an amount of a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmountError {
    /// Nothing but blanks.
    #[error("empty amount: write e.g. `10.5 {symbol}`")]
    Empty {
        /// The token's symbol.
        symbol: String,
    },
    /// A leading minus sign.
    #[error("amount `{text}` is negative: amounts are never negative")]
    Negative {
        /// The text.
        text: String,
    },
    /// Not digits with at most one decimal point.
    #[error("amount `{text}` is not a decimal number: write e.g. `10.5 {symbol}`")]
    NotANumber {
        /// The text.
        text: String,
        /// The token's symbol.
        symbol: String,
    },
    /// A symbol other than the token's.
    #[error("amount `{text}` is in {found}, but this amount is in {symbol}")]
    WrongSymbol {
        /// The text.
        text: String,
        /// The symbol written.
        found: String,
        /// The token's symbol.
        symbol: String,
    },
    /// More decimal places than the token has.
    #[error("amount `{text}` has {places} decimal places, but {symbol} has {decimals}")]
    TooManyDecimals {
        /// The text.
        text: String,
        /// Decimal places written.
        places: usize,
        /// The token's symbol.
        symbol: String,
        /// The token's decimals.
        decimals: u8,
    },
    /// Beyond 256 bits once in base units.
    #[error("amount `{text}` is too large (it does not fit in 256 bits of base units)")]
    Overflow {
        /// The text.
        text: String,
    },
    /// A token with more decimals than 256 bits can represent.
    #[error("{symbol} reports {decimals} decimals, more than a 256-bit amount can hold")]
    BadDecimals {
        /// The token's symbol.
        symbol: String,
        /// Its decimals.
        decimals: u8,
    },
}

/// The largest number of decimals whose scale `10^decimals` fits in 256 bits.
const MAX_DECIMALS: u8 = 77;

impl Token {
    /// `units` base units as `10.5 vUSD`.
    pub(crate) fn format(&self, units: U256) -> String {
        format!("{} {}", format_units(units, self.decimals), self.symbol)
    }

    /// `{"units": "10500000", "display": "10.5 vUSD"}`: exact base units (a decimal string) and the human form.
    pub(crate) fn json(&self, units: U256) -> serde_json::Value {
        serde_json::json!({ "units": units.to_string(), "display": self.format(units) })
    }

    /// Parses `10.5`, `10.5 vUSD` or `10.5vUSD` (symbol case-insensitive) into base units.
    pub(crate) fn parse(&self, text: &str) -> Result<U256, AmountError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(AmountError::Empty { symbol: self.symbol.clone() });
        }
        if trimmed.starts_with('-') {
            return Err(AmountError::Negative { text: trimmed.to_owned() });
        }
        let number_end = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number, rest) = trimmed.split_at(number_end);
        let unit = rest.trim();
        if !unit.is_empty() && !unit.eq_ignore_ascii_case(&self.symbol) {
            if unit.chars().all(|c| c.is_ascii_alphanumeric()) && unit.chars().any(|c| c.is_ascii_alphabetic()) {
                return Err(AmountError::WrongSymbol {
                    text: trimmed.to_owned(),
                    found: unit.to_owned(),
                    symbol: self.symbol.clone(),
                });
            }
            return Err(AmountError::NotANumber { text: trimmed.to_owned(), symbol: self.symbol.clone() });
        }
        parse_units(number, self.decimals).map_err(|e| match e {
            UnitsError::NotANumber => AmountError::NotANumber { text: trimmed.to_owned(), symbol: self.symbol.clone() },
            UnitsError::TooManyDecimals(places) => AmountError::TooManyDecimals {
                text: trimmed.to_owned(),
                places,
                symbol: self.symbol.clone(),
                decimals: self.decimals,
            },
            UnitsError::Overflow => AmountError::Overflow { text: trimmed.to_owned() },
            UnitsError::BadDecimals => {
                AmountError::BadDecimals { symbol: self.symbol.clone(), decimals: self.decimals }
            }
        })
    }
}

/// Why a plain decimal number cannot be converted to base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitsError {
    NotANumber,
    TooManyDecimals(usize),
    Overflow,
    BadDecimals,
}

/// `10^decimals`, if it fits in 256 bits.
fn scale(decimals: u8) -> Option<U256> {
    (decimals <= MAX_DECIMALS).then(|| U256::from(10u8).pow(U256::from(decimals)))
}

/// Converts a plain decimal number (`10`, `10.5`, `.5`, `10.`) to base units of a token with `decimals`.
pub(crate) fn parse_units(number: &str, decimals: u8) -> Result<U256, UnitsError> {
    let scale = scale(decimals).ok_or(UnitsError::BadDecimals)?;
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(UnitsError::NotANumber);
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(UnitsError::TooManyDecimals(frac.len()));
    }
    let int_value = if int.is_empty() { U256::ZERO } else { int.parse::<U256>().map_err(|_| UnitsError::Overflow)? };
    let frac_value = if frac.is_empty() {
        U256::ZERO
    } else {
        let padded = format!("{frac:0<width$}", width = usize::from(decimals));
        padded.parse::<U256>().map_err(|_| UnitsError::Overflow)?
    };
    int_value.checked_mul(scale).and_then(|v| v.checked_add(frac_value)).ok_or(UnitsError::Overflow)
}

/// Base units as a plain decimal number of whole tokens, trailing zeros trimmed: `10500000`, 6 → `10.5`.
pub(crate) fn format_units(units: U256, decimals: u8) -> String {
    let Some(scale) = scale(decimals) else { return format!("{units} (base units)") };
    let int = units / scale;
    let frac = units % scale;
    if frac.is_zero() {
        return int.to_string();
    }
    let frac = format!("{frac:0>width$}", width = usize::from(decimals));
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vusd() -> Token {
        Token { address: Address::ZERO, symbol: "vUSD".into(), decimals: 6 }
    }

    fn vst() -> Token {
        Token { address: Address::ZERO, symbol: "VST".into(), decimals: 18 }
    }

    #[test]
    fn parses_human_amounts_exactly() {
        assert_eq!(vusd().parse("10.5 vUSD"), Ok(U256::from(10_500_000u64)));
        assert_eq!(vusd().parse("10.5vusd"), Ok(U256::from(10_500_000u64)));
        assert_eq!(vusd().parse(" 10 "), Ok(U256::from(10_000_000u64)));
        assert_eq!(vusd().parse("0.000001 vUSD"), Ok(U256::from(1u64)));
        assert_eq!(vusd().parse(".5"), Ok(U256::from(500_000u64)));
        assert_eq!(vusd().parse("7.100000"), Ok(U256::from(7_100_000u64)), "trailing zeros are not decimals");
        assert_eq!(vst().parse("1000 VST"), Ok(U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64))));
    }

    #[test]
    fn refuses_what_it_cannot_represent() {
        assert!(matches!(vusd().parse("0.0000001 vUSD"), Err(AmountError::TooManyDecimals { places: 7, .. })));
        assert_eq!(
            vusd().parse("0.0000001 vUSD").unwrap_err().to_string(),
            "amount `0.0000001 vUSD` has 7 decimal places, but vUSD has 6"
        );
        assert!(matches!(vusd().parse("-1 vUSD"), Err(AmountError::Negative { .. })));
        assert!(matches!(
            vusd().parse("1e6"),
            Err(AmountError::WrongSymbol { .. }) | Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(vusd().parse("1.2.3"), Err(AmountError::NotANumber { .. })));
        assert!(matches!(vusd().parse("."), Err(AmountError::NotANumber { .. })));
        assert!(matches!(vusd().parse(""), Err(AmountError::Empty { .. })));
        assert!(matches!(vusd().parse("10 VST"), Err(AmountError::WrongSymbol { .. })));
        assert_eq!(
            vusd().parse("10 VST").unwrap_err().to_string(),
            "amount `10 VST` is in VST, but this amount is in vUSD"
        );
        let huge = format!("{} vUSD", U256::MAX);
        assert!(matches!(vusd().parse(&huge), Err(AmountError::Overflow { .. })));
        let too_many_digits = "1".repeat(90);
        assert!(matches!(vusd().parse(&too_many_digits), Err(AmountError::Overflow { .. })));
    }

    #[test]
    fn formats_round_trip() {
        for units in [0u64, 1, 10, 999_999, 1_000_000, 10_500_000, 123_456_789] {
            let text = vusd().format(U256::from(units));
            assert_eq!(vusd().parse(&text), Ok(U256::from(units)), "{text}");
        }
        assert_eq!(vusd().format(U256::from(10_500_000u64)), "10.5 vUSD");
        assert_eq!(vusd().format(U256::from(425_000u64)), "0.425 vUSD");
        assert_eq!(vst().format(U256::from(10u64).pow(U256::from(21u64))), "1000 VST");
        assert_eq!(format_units(U256::MAX, 0), U256::MAX.to_string());
        assert_eq!(format_units(U256::from(5u8), 80), "5 (base units)");
    }
}
