//! Rates in basis points, written `66.67%` or `6667bps` and printed as percentages.

/// Basis points in 100 %.
pub(crate) const BPS: u16 = 10_000;

/// Parses `66.67%`, `5%`, `6667bps` or `6667 bps` into basis points (at most 100 %).
pub(crate) fn parse_bps(text: &str) -> Result<u16, String> {
    let t = text.trim();
    let bad = || format!("rate `{t}`: write a percentage such as `66.67%` or basis points such as `6667bps`");
    let bps: u64 = if let Some(number) = t.strip_suffix('%') {
        let number = number.trim();
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let frac = frac.trim_end_matches('0');
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 2 {
            return Err(format!("rate `{t}` is finer than a basis point (0.01%)"));
        }
        let int: u64 = int.parse().map_err(|_| format!("rate `{t}` is above 100%"))?;
        let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
        int.checked_mul(100).and_then(|v| v.checked_add(frac)).ok_or_else(|| format!("rate `{t}` is above 100%"))?
    } else if let Some(number) = t.strip_suffix("bps") {
        let number = number.trim();
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        number.parse().map_err(|_| format!("rate `{t}` is above 100% (10000bps)"))?
    } else if t.starts_with('-') {
        return Err(format!("rate `{t}` is negative"));
    } else {
        return Err(bad());
    };
    if bps > u64::from(BPS) {
        return Err(format!("rate `{t}` is above 100% (10000bps)"));
    }
    u16::try_from(bps).map_err(|_| bad())
}

/// Basis points as a percentage: `6667` → `66.67%`, `1000` → `10%`.
pub(crate) fn format_bps(bps: u64) -> String {
    let int = bps / 100;
    let frac = bps % 100;
    if frac == 0 { format!("{int}%") } else { format!("{int}.{}%", format!("{frac:02}").trim_end_matches('0')) }
}

/// `part / whole` as a percentage rounded *down* to 0.01 % (so a share is never shown as reaching a threshold it
/// misses): `1/3` → `33.33%`. `None` when `whole` is zero.
pub(crate) fn format_share(part: alloy_primitives::U256, whole: alloy_primitives::U256) -> Option<String> {
    if whole.is_zero() {
        return None;
    }
    let bps = part.saturating_mul(alloy_primitives::U256::from(BPS)) / whole;
    Some(format_bps(u64::try_from(bps).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;

    #[test]
    fn parses_percentages_and_bps() {
        assert_eq!(parse_bps("66.67%"), Ok(6667));
        assert_eq!(parse_bps("10%"), Ok(1000));
        assert_eq!(parse_bps("0.5%"), Ok(50));
        assert_eq!(parse_bps("100%"), Ok(10_000));
        assert_eq!(parse_bps("6667bps"), Ok(6667));
        assert_eq!(parse_bps("6667 bps"), Ok(6667));
        assert_eq!(parse_bps("12.50%"), Ok(1250));
        assert!(parse_bps("66.675%").unwrap_err().contains("finer than a basis point"));
        assert!(parse_bps("101%").unwrap_err().contains("above 100%"));
        assert!(parse_bps("10001bps").unwrap_err().contains("above 100%"));
        assert!(parse_bps("10").unwrap_err().contains("write a percentage"));
        assert!(parse_bps("-5%").is_err());
        assert!(parse_bps("99999999999999999999999%").unwrap_err().contains("above 100%"));
    }

    #[test]
    fn formats() {
        assert_eq!(format_bps(6667), "66.67%");
        assert_eq!(format_bps(6670), "66.7%");
        assert_eq!(format_bps(1000), "10%");
        assert_eq!(format_bps(5), "0.05%");
        assert_eq!(format_share(U256::from(1), U256::from(3)).as_deref(), Some("33.33%"));
        assert_eq!(format_share(U256::from(2), U256::from(3)).as_deref(), Some("66.66%"), "rounded down");
        assert_eq!(format_share(U256::from(3), U256::from(3)).as_deref(), Some("100%"));
        assert_eq!(format_share(U256::from(3), U256::ZERO), None);
    }
}
