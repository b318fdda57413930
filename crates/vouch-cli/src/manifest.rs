//! Blueprint manifests: the TOML a developer writes for `vouch blueprint deploy`, checked locally against every rule
//! `VouchProtocol.createBlueprint` enforces, with messages that name the manifest key, before anything is sent.
//!
//! ```toml
//! version = 1                      # manifest format
//! arbiter = "0x…"                  # optional: may veto deviation slashes
//! hooks = "0x…"                    # optional: IBlueprintHooks contract
//!
//! [metadata]
//! uri = "https://example.com/echo/metadata.json"
//! file = "metadata.json"           # hashed into metadataHash (relative to the manifest)
//! digest = "sha256"                # or "keccak256" (default sha256)
//! # hash = "0x…"                   # instead of `file`: the hash itself
//!
//! [policy]
//! quorum = "66.67%"                # of the service's stake
//! min_signers = 2
//! developer_fee = "10%"            # default 0%
//! dispute_window = "1d"
//! jail_after_misses = 3            # default 0 = never
//!
//! [policy.slashing]
//! equivocation = "10%"             # of the operator's slashable stake
//! deviation = "5%"
//! missed_deadline = "1%"
//! payer_share = "25%"              # of the slashed stake, to the call's payer
//! reporter_share = "25%"           # to the reporter; the rest is burned
//!
//! [[jobs]]                         # index 0, 1, … in order
//! name = "echo"                    # optional label, not on chain
//! price = "0.01 vUSD"
//! deadline = "5m"                  # 60s … 7d
//! verification = "exact"           # default; "tolerant" or "checked" (then callable only through a gateway)
//! ```

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256, keccak256};
use eyre::{WrapErr, bail, eyre};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vouch_contracts::{
    view::verification_code,
    vouch_protocol::IVouchProtocol::{Job, Policy},
};
use vouch_primitives::wire::Verification;

use crate::{
    amount::Token,
    duration::{format_duration, parse_duration},
    rate::{BPS, format_bps, parse_bps},
};

/// The manifest format this build reads.
pub(crate) const MANIFEST_VERSION: u64 = 1;
/// `VouchProtocol.MAX_JOBS`.
pub(crate) const MAX_JOBS: usize = 32;
/// `VouchProtocol.MIN_JOB_DEADLINE`, seconds.
pub(crate) const MIN_JOB_DEADLINE: u64 = 60;
/// `VouchProtocol.MAX_JOB_DEADLINE`, seconds.
pub(crate) const MAX_JOB_DEADLINE: u64 = 7 * 86_400;

/// The manifest as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[allow(dead_code, reason = "checked before the manifest is parsed")]
    version: u64,
    #[serde(default)]
    arbiter: Option<String>,
    #[serde(default)]
    hooks: Option<String>,
    metadata: RawMetadata,
    policy: RawPolicy,
    jobs: Vec<RawJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    uri: String,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    hash: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    quorum: String,
    min_signers: u64,
    #[serde(default)]
    developer_fee: Option<String>,
    dispute_window: DurationValue,
    #[serde(default)]
    jail_after_misses: u64,
    slashing: RawSlashing,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlashing {
    equivocation: String,
    deviation: String,
    missed_deadline: String,
    payer_share: String,
    reporter_share: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(default)]
    name: Option<String>,
    price: String,
    deadline: DurationValue,
    /// `"exact"` (default), `"tolerant"` or `"checked"`: registered on chain with the job.
    #[serde(default)]
    verification: Verification,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Text(String),
}

impl DurationValue {
    fn seconds(&self) -> Result<u64, String> {
        match self {
            Self::Seconds(s) => Ok(*s),
            Self::Text(t) => parse_duration(t),
        }
    }

    fn shown(&self) -> String {
        match self {
            Self::Seconds(s) => s.to_string(),
            Self::Text(t) => format!("{t:?}"),
        }
    }
}

/// What the chain contributes to validation.
#[derive(Debug, Clone)]
pub(crate) struct ChainRules {
    /// The payment token (prices).
    pub(crate) payment: Token,
    /// `VouchProtocol.PROTOCOL_FEE_BPS`.
    pub(crate) protocol_fee_bps: u16,
    /// `VouchStaking.unbondingDelay`, seconds.
    pub(crate) unbonding_delay: u64,
    /// `VouchProtocol.MAX_PRICE`.
    pub(crate) max_price: U256,
}

/// A manifest read from disk (syntax checked; rules not yet).
#[derive(Debug)]
pub(crate) struct Manifest {
    path: PathBuf,
    raw: RawManifest,
}

/// A checked blueprint, ready for `createBlueprint`.
#[derive(Debug, Clone)]
pub(crate) struct BlueprintSpec {
    /// Where the metadata is published.
    pub(crate) metadata_uri: String,
    /// Its content hash.
    pub(crate) metadata_hash: B256,
    /// `sha256`, `keccak256`, or `given` when the manifest states the hash.
    pub(crate) metadata_digest: String,
    /// Jobs, indexed from 0.
    pub(crate) jobs: Vec<Job>,
    /// Their optional labels.
    pub(crate) job_names: Vec<Option<String>>,
    /// Policy.
    pub(crate) policy: Policy,
    /// Arbiter (zero = none).
    pub(crate) arbiter: Address,
    /// Hooks (zero = none).
    pub(crate) hooks: Address,
}

impl Manifest {
    /// Reads and parses a manifest (TOML syntax and field names only).
    pub(crate) fn read(path: &Path) -> eyre::Result<Self> {
        let text =
            std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read manifest {}", path.display()))?;
        let value: toml::Table = toml::from_str(&text)
            .map_err(|e| eyre!("manifest {} is not valid TOML: {}", path.display(), e.to_string().trim_end()))?;
        match value.get("version").and_then(toml::Value::as_integer) {
            Some(v) if u64::try_from(v) == Ok(MANIFEST_VERSION) => {}
            Some(v) => {
                bail!("manifest {} has version {v}, this vouch reads version {MANIFEST_VERSION}", path.display())
            }
            None => bail!("manifest {} has no `version = {MANIFEST_VERSION}` line", path.display()),
        }
        let raw: RawManifest = toml::from_str(&text)
            .map_err(|e| eyre!("manifest {} is invalid: {}", path.display(), e.to_string().trim_end()))?;
        Ok(Self { path: path.to_owned(), raw })
    }

    /// Checks every rule of `createBlueprint` and returns the blueprint, or every problem found (one per line).
    pub(crate) fn check(&self, rules: &ChainRules) -> eyre::Result<BlueprintSpec> {
        let mut problems: Vec<String> = Vec::new();
        let raw = &self.raw;

        let address = |key: &str, value: &Option<String>, problems: &mut Vec<String>| match value.as_deref() {
            None | Some("") | Some("none") => Address::ZERO,
            Some(text) => text.parse::<Address>().unwrap_or_else(|_| {
                problems.push(format!("{key} = {text:?}: not an address (0x and 40 hex digits), or \"none\""));
                Address::ZERO
            }),
        };
        let arbiter = address("arbiter", &raw.arbiter, &mut problems);
        let hooks = address("hooks", &raw.hooks, &mut problems);

        // Metadata.
        let m = &raw.metadata;
        if m.uri.trim().is_empty() {
            problems.push("metadata.uri is empty: where is the metadata published?".into());
        }
        let (metadata_hash, metadata_digest) = match (&m.file, &m.hash) {
            (Some(_), Some(_)) => {
                problems.push("metadata: give either `file` (hashed here) or `hash`, not both".into());
                (B256::ZERO, String::new())
            }
            (None, None) => {
                problems.push("metadata: give `file` (the metadata file, hashed here) or `hash` (its hash)".into());
                (B256::ZERO, String::new())
            }
            (None, Some(hash)) => {
                if m.digest.is_some() {
                    problems.push("metadata.digest applies to metadata.file; with metadata.hash leave it out".into());
                }
                match hash.parse::<B256>() {
                    Ok(h) => (h, "given".to_owned()),
                    Err(_) => {
                        problems
                            .push(format!("metadata.hash = {hash:?}: not a 32-byte hex hash (0x and 64 hex digits)"));
                        (B256::ZERO, String::new())
                    }
                }
            }
            (Some(file), None) => {
                let dir = self.path.parent().unwrap_or(Path::new("."));
                let full = if file.is_absolute() { file.clone() } else { dir.join(file) };
                let algorithm = m.digest.as_deref().unwrap_or("sha256");
                match std::fs::read(&full) {
                    Err(e) => {
                        problems.push(format!(
                            "metadata.file = {:?}: cannot read {}: {e}",
                            file.display(),
                            full.display()
                        ));
                        (B256::ZERO, String::new())
                    }
                    Ok(bytes) => match algorithm {
                        "sha256" => (B256::from_slice(&Sha256::digest(&bytes)), "sha256".to_owned()),
                        "keccak256" => (keccak256(&bytes), "keccak256".to_owned()),
                        other => {
                            problems.push(format!("metadata.digest = {other:?}: use \"sha256\" or \"keccak256\""));
                            (B256::ZERO, String::new())
                        }
                    },
                }
            }
        };

        // Jobs.
        if raw.jobs.is_empty() || raw.jobs.len() > MAX_JOBS {
            problems.push(format!("a blueprint has 1 to {MAX_JOBS} [[jobs]], this manifest has {}", raw.jobs.len()));
        }
        let mut jobs = Vec::with_capacity(raw.jobs.len());
        let mut max_deadline = 0u64;
        for (i, job) in raw.jobs.iter().enumerate() {
            let price = match rules.payment.parse(&job.price) {
                Ok(p) if p.is_zero() => {
                    problems.push(format!("jobs[{i}].price = {:?}: a job's price must be above 0", job.price));
                    0
                }
                Ok(p) if p > rules.max_price => {
                    problems.push(format!(
                        "jobs[{i}].price = {:?}: above the protocol's maximum price {}",
                        job.price,
                        rules.payment.format(rules.max_price)
                    ));
                    0
                }
                Ok(p) => u128::try_from(p).unwrap_or(0),
                Err(e) => {
                    problems.push(format!("jobs[{i}].price: {e}"));
                    0
                }
            };
            let deadline = match job.deadline.seconds() {
                Ok(d) if !(MIN_JOB_DEADLINE..=MAX_JOB_DEADLINE).contains(&d) => {
                    problems.push(format!(
                        "jobs[{i}].deadline = {}: a job deadline is between {} and {}",
                        job.deadline.shown(),
                        format_duration(MIN_JOB_DEADLINE),
                        format_duration(MAX_JOB_DEADLINE)
                    ));
                    0
                }
                Ok(d) => d,
                Err(e) => {
                    problems.push(format!("jobs[{i}].deadline: {e}"));
                    0
                }
            };
            max_deadline = max_deadline.max(deadline);
            jobs.push(Job {
                price,
                deadline: u32::try_from(deadline).unwrap_or(0),
                verification: verification_code(job.verification),
            });
        }
        let mut names: Vec<&str> = raw.jobs.iter().filter_map(|j| j.name.as_deref()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            problems.push(format!("two jobs are named {:?}: job names must be unique", pair[0]));
        }

        // Policy.
        let p = &raw.policy;
        let mut rate = |key: &str, text: &str| match parse_bps(text) {
            Ok(bps) => bps,
            Err(e) => {
                problems.push(format!("policy.{key}: {e}"));
                0
            }
        };
        let quorum = rate("quorum", &p.quorum);
        let developer_fee = rate("developer_fee", p.developer_fee.as_deref().unwrap_or("0%"));
        let s = &p.slashing;
        let equivocation = rate("slashing.equivocation", &s.equivocation);
        let deviation = rate("slashing.deviation", &s.deviation);
        let missed = rate("slashing.missed_deadline", &s.missed_deadline);
        let payer_share = rate("slashing.payer_share", &s.payer_share);
        let reporter_share = rate("slashing.reporter_share", &s.reporter_share);
        if quorum == 0 && parse_bps(&p.quorum).is_ok() {
            problems.push("policy.quorum must be above 0%".into());
        }
        if p.min_signers == 0 {
            problems.push("policy.min_signers must be at least 1".into());
        }
        let min_signers = u16::try_from(p.min_signers).unwrap_or_else(|_| {
            problems.push(format!("policy.min_signers = {}: at most {}", p.min_signers, u16::MAX));
            0
        });
        if u32::from(developer_fee) + u32::from(rules.protocol_fee_bps) > u32::from(BPS) {
            problems.push(format!(
                "policy.developer_fee {} plus the protocol fee {} exceeds 100%",
                format_bps(u64::from(developer_fee)),
                format_bps(u64::from(rules.protocol_fee_bps))
            ));
        }
        if u32::from(payer_share) + u32::from(reporter_share) > u32::from(BPS) {
            problems.push(format!(
                "policy.slashing.payer_share {} plus reporter_share {} exceeds 100%",
                format_bps(u64::from(payer_share)),
                format_bps(u64::from(reporter_share))
            ));
        }
        let dispute_window = match p.dispute_window.seconds() {
            Ok(d) => u32::try_from(d).unwrap_or_else(|_| {
                problems.push(format!("policy.dispute_window = {}: too long", p.dispute_window.shown()));
                0
            }),
            Err(e) => {
                problems.push(format!("policy.dispute_window: {e}"));
                0
            }
        };
        if max_deadline + u64::from(dispute_window) >= rules.unbonding_delay {
            problems.push(format!(
                "the longest job deadline ({}) plus policy.dispute_window ({}) must be shorter than the staking unbonding \
                 delay ({}), so stake cannot leave before a fault is proven",
                format_duration(max_deadline),
                format_duration(u64::from(dispute_window)),
                format_duration(rules.unbonding_delay)
            ));
        }
        let jail_after_misses = u8::try_from(p.jail_after_misses).unwrap_or_else(|_| {
            problems.push(format!("policy.jail_after_misses = {}: at most 255 (0 = never)", p.jail_after_misses));
            0
        });

        if !problems.is_empty() {
            let count = problems.len();
            let list = problems.iter().map(|p| format!("\n  - {p}")).collect::<String>();
            bail!("manifest {} has {count} problem{}:{list}", self.path.display(), if count == 1 { "" } else { "s" });
        }
        Ok(BlueprintSpec {
            metadata_uri: m.uri.clone(),
            metadata_hash,
            metadata_digest,
            jobs,
            job_names: raw.jobs.iter().map(|j| j.name.clone()).collect(),
            policy: Policy {
                quorumBps: quorum,
                minSigners: min_signers,
                developerFeeBps: developer_fee,
                equivocationSlashBps: equivocation,
                deviationSlashBps: deviation,
                missedDeadlineSlashBps: missed,
                payerShareBps: payer_share,
                reporterShareBps: reporter_share,
                disputeWindow: dispute_window,
                jailAfterMisses: jail_after_misses,
            },
            arbiter,
            hooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version = 1

[metadata]
uri = "https://example.com/echo.json"
hash = "0x1111111111111111111111111111111111111111111111111111111111111111"

[policy]
quorum = "66.67%"
min_signers = 2
developer_fee = "10%"
dispute_window = "1d"

[policy.slashing]
equivocation = "10%"
deviation = "5%"
missed_deadline = "1%"
payer_share = "25%"
reporter_share = "25%"

[[jobs]]
name = "echo"
price = "10 vUSD"
deadline = "1h"
"#;

    fn rules() -> ChainRules {
        ChainRules {
            payment: Token { address: Address::ZERO, symbol: "vUSD".into(), decimals: 6 },
            protocol_fee_bps: 500,
            unbonding_delay: 14 * 86_400,
            max_price: U256::from(u128::from(u64::MAX) << 32 | u128::from(u32::MAX)),
        }
    }

    fn check(text: &str) -> eyre::Result<BlueprintSpec> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blueprint.toml");
        std::fs::write(&path, text).expect("writes");
        Manifest::read(&path)?.check(&rules())
    }

    #[test]
    fn a_good_manifest_becomes_the_blueprint() {
        let spec = check(GOOD).expect("valid");
        assert_eq!(spec.jobs[0].price, 10_000_000);
        assert_eq!(spec.jobs[0].deadline, 3600);
        assert_eq!(spec.policy.quorumBps, 6667);
        assert_eq!(spec.policy.minSigners, 2);
        assert_eq!(spec.policy.developerFeeBps, 1000);
        assert_eq!(spec.policy.disputeWindow, 86_400);
        assert_eq!(spec.job_names, [Some("echo".to_owned())]);
        assert_eq!(spec.jobs[0].verification, 0, "exact by default");
    }

    #[test]
    fn a_job_declares_its_verification_mode() {
        let text = format!("{GOOD}\n[[jobs]]\nprice = \"1 vUSD\"\ndeadline = \"5m\"\nverification = \"tolerant\"\n");
        assert_eq!(check(&text).expect("valid").jobs[1].verification, 1);
        let text = text.replace("\"tolerant\"", "\"checked\"");
        assert_eq!(check(&text).expect("valid").jobs[1].verification, 2);
        let err = check(&text.replace("\"checked\"", "\"fuzzy\"")).expect_err("unknown mode");
        assert!(format!("{err:#}").contains("fuzzy"), "{err:#}");
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let bad = GOOD
            .replace("\"10 vUSD\"", "\"0.0000001 vUSD\"")
            .replace("\"1h\"", "\"10s\"")
            .replace("\"66.67%\"", "\"66.675%\"")
            .replace("developer_fee = \"10%\"", "developer_fee = \"96%\"")
            .replace("payer_share = \"25%\"", "payer_share = \"80%\"");
        let err = check(&bad).expect_err("invalid").to_string();
        for expected in [
            "has 5 problems",
            "jobs[0].price: amount `0.0000001 vUSD` has 7 decimal places, but vUSD has 6",
            "jobs[0].deadline = \"10s\": a job deadline is between 1m and 7d",
            "policy.quorum: rate `66.675%` is finer than a basis point (0.01%)",
            "policy.developer_fee 96% plus the protocol fee 5% exceeds 100%",
            "policy.slashing.payer_share 80% plus reporter_share 25% exceeds 100%",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn unbonding_and_syntax() {
        let long = GOOD.replace("\"1h\"", "\"7d\"").replace("\"1d\"", "\"7d\"");
        let err = check(&long).expect_err("too long").to_string();
        assert!(err.contains("the longest job deadline (7d) plus policy.dispute_window (7d) must be shorter than the staking unbonding delay (14d)"), "{err}");
        let err = check(&GOOD.replace("min_signers", "min_signer")).expect_err("typo").to_string();
        assert!(err.contains("unknown field `min_signer`"), "{err}");
        let err = check(&GOOD.replace("version = 1", "version = 2")).expect_err("version").to_string();
        assert!(err.contains("has version 2"), "{err}");
        let err = check("version = 1\n[policy\n").expect_err("syntax").to_string();
        assert!(err.contains("not valid TOML") && err.contains("line 2"), "{err}");
    }
}
