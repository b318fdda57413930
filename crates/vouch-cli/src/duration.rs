//! Durations (`90s`, `5m`, `1h30m`, `7d`) and unix timestamps printed as UTC dates.

/// Parses a duration: one or more `<number><unit>` parts with units `s`, `m`, `h`, `d`, `w` (`1h30m`, `7d`), or a
/// bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("duration `{t}`: write e.g. `90s`, `5m`, `1h30m` or `7d`");
    if t.is_empty() || t.starts_with('-') {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("duration `{t}` is too long"));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        if number.is_empty() {
            return Err(bad());
        }
        let n: u64 = number.parse().map_err(|_| format!("duration `{t}` is too long"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{t}` is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Seconds as the largest units that divide them: `300` → `5m`, `5400` → `1h30m`, `604800` → `7d`, `0` → `0s`.
pub(crate) fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = seconds;
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// A unix timestamp as `2026-05-01 12:00:00 UTC`.
pub(crate) fn format_timestamp(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2026-05-01 12:00:00 UTC (in 5m)` relative to `now` (chain time).
pub(crate) fn format_timestamp_relative(unix: u64, now: u64) -> String {
    let relative = if unix > now {
        format!("in {}", format_duration(unix - now))
    } else if unix == now {
        "now".into()
    } else {
        format!("{} ago", format_duration(now - unix))
    };
    format!("{} ({relative})", format_timestamp(unix))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1h 30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert_eq!(parse_duration("120"), Ok(120));
        for bad in ["", "5x", "m", "5m3", "-5m", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999999999w").is_err());
        assert_eq!(format_duration(300), "5m");
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_duration(604_800), "7d");
        assert_eq!(format_duration(90_061), "1d1h1m1s");
        for s in [1u64, 59, 61, 3599, 86_399, 1_209_600, 1_234_567] {
            assert_eq!(parse_duration(&format_duration(s)), Ok(s));
        }
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_timestamp(1_777_636_800), "2026-05-01 12:00:00 UTC");
        assert_eq!(format_timestamp_relative(1_777_637_100, 1_777_636_800), "2026-05-01 12:05:00 UTC (in 5m)");
        assert_eq!(format_timestamp_relative(1_777_636_800, 1_777_640_400), "2026-05-01 12:00:00 UTC (1h ago)");
    }
}
