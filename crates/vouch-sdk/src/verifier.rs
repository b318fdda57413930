//! [`Verifier`]: does another operator's output agree with ours?

use std::fmt;

use alloy_primitives::keccak256;
use serde_json::Value;

/// Decides whether another operator's output for the same call agrees with ours.
///
/// Set per job with [`Router::verifier`](crate::Router::verifier); the default is [`Exact`].
/// Certificates sign one result hash, so a non-exact verifier makes the job
/// [`Verification::Tolerant`](crate::Verification::Tolerant): each operator commits to its own output,
/// and signs the output proposed for certification as its result only if this verifier says it agrees
/// with its own (`docs/design/tolerant-verification.md`). Make it deterministic and cheap.
pub trait Verifier: Send + Sync + 'static {
    /// Compares our output `own` with `other`.
    fn agrees(&self, own: &[u8], other: &[u8]) -> Agreement;

    /// A short, stable name for docs and metrics: `"exact"`, `"json_tolerance"`, ….
    fn name(&self) -> &'static str;

    /// Whether this verifier is byte equality, which keeps its job
    /// [`Verification::Exact`](crate::Verification::Exact) (operators sign their own results directly).
    /// `true` only for [`Exact`]; leave the default (`false`) for your own verifiers.
    fn is_exact(&self) -> bool {
        false
    }
}

/// A verifier's decision. An enum, not a bool: a disagreement says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// The outputs are equivalent.
    Agree,
    /// The outputs differ.
    Disagree {
        /// What differs, for logs and evidence.
        reason: String,
    },
}

impl Agreement {
    /// A disagreement with `reason`.
    pub fn disagree(reason: impl Into<String>) -> Self {
        Self::Disagree { reason: reason.into() }
    }
}

/// Byte equality, that is, equal keccak256 result hashes. The default for every job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exact;

impl Verifier for Exact {
    fn agrees(&self, own: &[u8], other: &[u8]) -> Agreement {
        if own == other {
            Agreement::Agree
        } else {
            Agreement::disagree(format!(
                "result hashes differ: ours {} ({} bytes), theirs {} ({} bytes)",
                keccak256(own),
                own.len(),
                keccak256(other),
                other.len()
            ))
        }
    }

    fn name(&self) -> &'static str {
        "exact"
    }

    fn is_exact(&self) -> bool {
        true
    }
}

/// JSON outputs that are equal except for numbers, which may differ by
/// `absolute + relative * max(|a|, |b|)`. Object keys, array lengths, strings, booleans and nulls
/// must match exactly. For jobs with floating-point results (embeddings, scores) computed on
/// different hardware.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JsonTolerance {
    /// Allowed absolute difference of two numbers.
    pub absolute: f64,
    /// Allowed difference relative to the larger magnitude of the two numbers.
    pub relative: f64,
}

impl Verifier for JsonTolerance {
    fn agrees(&self, own: &[u8], other: &[u8]) -> Agreement {
        let own: Value = match serde_json::from_slice(own) {
            Ok(value) => value,
            Err(error) => return Agreement::disagree(format!("our output is not JSON: {error}")),
        };
        let other: Value = match serde_json::from_slice(other) {
            Ok(value) => value,
            Err(error) => return Agreement::disagree(format!("their output is not JSON: {error}")),
        };
        match self.first_difference(&own, &other, &mut Vec::new()) {
            None => Agreement::Agree,
            Some(reason) => Agreement::Disagree { reason },
        }
    }

    fn name(&self) -> &'static str {
        "json_tolerance"
    }
}

/// One step of a JSON path, for disagreement messages.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => write!(f, ".{key}"),
            Self::Index(index) => write!(f, "[{index}]"),
        }
    }
}

impl JsonTolerance {
    fn first_difference<'a>(&self, own: &'a Value, other: &'a Value, path: &mut Vec<Step<'a>>) -> Option<String> {
        let at = |path: &[Step<'_>]| {
            let path: String = path.iter().map(ToString::to_string).collect();
            if path.is_empty() { "the top level".to_owned() } else { format!("`{}`", path.trim_start_matches('.')) }
        };
        match (own, other) {
            (Value::Number(a), Value::Number(b)) => {
                let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                    return (a != b).then(|| format!("numbers at {} differ: {a} vs {b}", at(path)));
                };
                let allowed = self.absolute + self.relative * x.abs().max(y.abs());
                // Integers are subtracted exactly: large ones would lose their difference as f64.
                let difference = match (as_i128(a), as_i128(b)) {
                    (Some(x), Some(y)) => x.abs_diff(y) as f64,
                    _ => (x - y).abs(),
                };
                // Negated so that a NaN difference (impossible in JSON, but cheap to guard) disagrees.
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let too_far = !(difference <= allowed);
                too_far.then(|| format!("numbers at {} differ by more than {allowed}: {a} vs {b}", at(path)))
            }
            (Value::Array(a), Value::Array(b)) => {
                if a.len() != b.len() {
                    return Some(format!("arrays at {} have lengths {} and {}", at(path), a.len(), b.len()));
                }
                a.iter().zip(b).enumerate().find_map(|(index, (x, y))| {
                    path.push(Step::Index(index));
                    let found = self.first_difference(x, y, path);
                    path.pop();
                    found
                })
            }
            (Value::Object(a), Value::Object(b)) => {
                if let Some(key) =
                    a.keys().find(|key| !b.contains_key(*key)).or_else(|| b.keys().find(|key| !a.contains_key(*key)))
                {
                    return Some(format!("key `{key}` is present in only one output at {}", at(path)));
                }
                a.iter().find_map(|(key, x)| {
                    let y = b.get(key)?;
                    path.push(Step::Key(key));
                    let found = self.first_difference(x, y, path);
                    path.pop();
                    found
                })
            }
            (a, b) if a == b => None,
            (a, b) => Some(format!("values at {} differ: {a} vs {b}", at(path))),
        }
    }
}

fn as_i128(number: &serde_json::Number) -> Option<i128> {
    number.as_i64().map(i128::from).or_else(|| number.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_compares_bytes() {
        assert_eq!(Exact.agrees(b"abc", b"abc"), Agreement::Agree);
        let Agreement::Disagree { reason } = Exact.agrees(b"abc", b"abd") else { panic!("expected a disagreement") };
        assert!(reason.contains("result hashes differ"), "{reason}");
        assert_eq!(Exact.name(), "exact");
    }

    #[test]
    fn json_tolerance_allows_small_numeric_differences_only() {
        let tolerance = JsonTolerance { absolute: 1e-6, relative: 0.0 };
        assert_eq!(tolerance.agrees(br#"{"v":[0.1,2]}"#, br#"{ "v": [0.1000001, 2] }"#), Agreement::Agree);
        let Agreement::Disagree { reason } = tolerance.agrees(br#"{"v":[0.1,2]}"#, br#"{"v":[0.2,2]}"#) else {
            panic!("expected a disagreement")
        };
        assert!(reason.contains("`v[0]`"), "{reason}");
        assert!(matches!(tolerance.agrees(br#"{"v":[1]}"#, br#"{"v":[1,2]}"#), Agreement::Disagree { .. }));
        assert!(matches!(tolerance.agrees(br#"{"a":1}"#, br#"{"b":1}"#), Agreement::Disagree { .. }));
        assert!(matches!(tolerance.agrees(br#""x""#, br#""y""#), Agreement::Disagree { .. }));
        assert!(matches!(tolerance.agrees(b"{}", b"not json"), Agreement::Disagree { .. }));
        let relative = JsonTolerance { absolute: 0.0, relative: 0.01 };
        assert_eq!(relative.agrees(b"1000", b"1005"), Agreement::Agree);
        assert!(matches!(relative.agrees(b"1000", b"1020"), Agreement::Disagree { .. }));
        let exact_integers = JsonTolerance { absolute: 0.5, relative: 0.0 };
        assert!(matches!(
            exact_integers.agrees(b"18446744073709551615", b"18446744073709551614"),
            Agreement::Disagree { .. }
        ));
    }
}
