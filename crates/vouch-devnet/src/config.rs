//! [`DevnetConfig`]: what [`crate::Devnet::start`] builds. `Default` is the documented demo network.

use std::{path::PathBuf, time::Duration};

use alloy::primitives::{Address, U256};
use vouch_contracts::{DeployConfig, vouch_protocol::IVouchProtocol::Policy};
use vouch_primitives::wire::Verification;

/// 1 ETH in wei.
pub const ONE_ETH: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// 1 stake token (VST, 18 decimals) in base units.
pub const ONE_VST: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// 1 Vouch USD (vUSD, 6 decimals) in base units.
pub const ONE_VUSD: U256 = U256::from_limbs([1_000_000, 0, 0, 0]);

/// What to start. Every field has a default (`DevnetConfig::default()`): 3 operators on a temporary data directory
/// and a free port.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Where keystores, `addresses.json`, `devnet.json` and `anvil.log` go. Must be absent or empty. `None`
    /// (default): a fresh temporary directory, removed at teardown.
    pub data_dir: Option<PathBuf>,
    /// Remove `data_dir` at teardown (always true for the temporary directory of `data_dir: None`).
    pub ephemeral: bool,
    /// anvil's JSON-RPC port; 0 (default) lets the OS pick a free one ([`crate::Devnet::port`] tells which).
    pub port: u16,
    /// The chain id anvil reports. Default 31337 (anvil's).
    pub chain_id: u64,
    /// The anvil binary. `None` (default): `anvil` on `PATH`, else `<repo>/node_modules/.bin/anvil`.
    pub anvil: Option<PathBuf>,
    /// How long anvil may take to listen and answer. Default 30 s.
    pub startup_timeout: Duration,
    /// The protocol's deployment parameters. Default: [`DeployConfig::default`] (fee 500 bps, unbonding 14 days,
    /// minimum self-stake 1,000 VST; the deployer owns the dev tokens and is the treasury).
    pub deploy: DeployConfig,
    /// Number of operators, 1 to 191 (a service's largest set) and at least the policy's `minSigners`. Default 3.
    pub operators: usize,
    /// Self-stake of each operator, in stake-token base units. Default 10,000 VST.
    pub operator_stake: U256,
    /// Commission of each operator, in basis points. Default 1,000 (10%).
    pub operator_commission_bps: u16,
    /// ETH given (`anvil_setBalance`) to every account the devnet creates. Default 100 ETH.
    pub account_eth: U256,
    /// Vouch USD minted to the customer. Default 1,000 vUSD.
    pub customer_usd: U256,
    /// The blueprint registered by the developer account.
    pub blueprint: BlueprintConfig,
    /// How long the service stays open for calls, from its request. Default 365 days.
    pub service_duration: Duration,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            ephemeral: false,
            port: 0,
            chain_id: 31337,
            anvil: None,
            startup_timeout: Duration::from_secs(30),
            deploy: DeployConfig::default(),
            operators: 3,
            operator_stake: U256::from(10_000u64) * ONE_VST,
            operator_commission_bps: 1_000,
            account_eth: U256::from(100u64) * ONE_ETH,
            customer_usd: U256::from(1_000u64) * ONE_VUSD,
            blueprint: BlueprintConfig::default(),
            service_duration: Duration::from_secs(365 * DAY),
        }
    }
}

const DAY: u64 = 24 * 60 * 60;

/// A job of the demo blueprint: its name lives in the blueprint's metadata, its price and deadline on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// Name in the metadata, e.g. `echo`.
    pub name: String,
    /// Price per call in payment-token base units (Vouch USD: 6 decimals).
    pub price: u128,
    /// Seconds from opening to the latest settlement (60 s to 7 days).
    pub deadline: u32,
    /// How its operators come to sign one result (metadata `jobs[i].verification`).
    pub verification: Verification,
}

impl JobConfig {
    /// A job with exact verification.
    pub fn new(name: impl Into<String>, price: u128, deadline: u32) -> Self {
        Self { name: name.into(), price, deadline, verification: Verification::Exact }
    }

    /// The same job with `verification`.
    pub fn with_verification(mut self, verification: Verification) -> Self {
        self.verification = verification;
        self
    }
}

/// The blueprint the devnet registers.
#[derive(Debug, Clone)]
pub struct BlueprintConfig {
    /// Name in the metadata (`blueprint.json`).
    pub name: String,
    /// The jobs, indexed from 0.
    pub jobs: Vec<JobConfig>,
    /// Verification, fee and slashing policy.
    pub policy: Policy,
    /// Who may veto a deviation proposal during the dispute window (zero: nobody; then commitment deviations of
    /// tolerant jobs cannot be proposed at all, see docs/design/slashing.md).
    pub arbiter: Address,
}

impl Default for BlueprintConfig {
    /// The demo blueprint: `echo` (0.01 vUSD, 10 minutes) and `hash` (keccak256; 0.05 vUSD, 1 hour); quorum 6,667 bps
    /// of stake and at least 2 signers; developer fee 10%; slashes of 10% (equivocation), 5% (deviation) and 1% (missed
    /// deadline), each split 25% to the payer, 25% to the reporter, the rest burned; a 1-day dispute window (well below
    /// the 14-day unbonding delay); jail after 3 misses.
    ///
    /// With equal stakes, 6,667 bps means more than two thirds: 3 operators certify only when all 3 sign, 4 tolerate
    /// one missing signer.
    fn default() -> Self {
        Self {
            name: "vouch-devnet-demo".into(),
            jobs: vec![JobConfig::new("echo", 10_000, 600), JobConfig::new("hash", 50_000, 3_600)],
            policy: Policy {
                quorumBps: 6_667,
                minSigners: 2,
                developerFeeBps: 1_000,
                equivocationSlashBps: 1_000,
                deviationSlashBps: 500,
                missedDeadlineSlashBps: 100,
                payerShareBps: 2_500,
                reporterShareBps: 2_500,
                disputeWindow: 86_400,
                jailAfterMisses: 3,
            },
            arbiter: Address::ZERO,
        }
    }
}

/// What [`crate::Devnet::fund`] gives an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Funding {
    /// ETH balance to set (`anvil_setBalance`; 0 leaves it unchanged), in wei.
    pub eth: U256,
    /// Stake tokens to mint, in base units.
    pub stake: U256,
    /// Vouch USD to mint, in base units.
    pub usd: U256,
}

impl DevnetConfig {
    /// Checks what the chain would refuse later, so a bad config fails before anvil starts.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let min_signers = usize::from(self.blueprint.policy.minSigners);
        if self.operators == 0 || self.operators > MAX_OPERATORS {
            return Err(format!("operators is {}, must be 1 to {MAX_OPERATORS}", self.operators));
        }
        if self.operators < min_signers {
            return Err(format!(
                "operators is {}, fewer than the blueprint policy's minSigners {min_signers}",
                self.operators
            ));
        }
        if self.operator_stake < self.deploy.min_self_stake {
            return Err(format!(
                "operator_stake {} is below the deployment's min_self_stake {}",
                self.operator_stake, self.deploy.min_self_stake
            ));
        }
        if self.operator_commission_bps > 10_000 {
            return Err(format!("operator_commission_bps is {}, at most 10000", self.operator_commission_bps));
        }
        if self.deploy.payment_token.is_some() || self.deploy.stake_token.is_some() || self.deploy.token_owner.is_some()
        {
            return Err(
                "the devnet mints with the deployer: deploy.payment_token, stake_token and token_owner must be \
                        None (fresh dev tokens owned by the deployer)"
                    .into(),
            );
        }
        if self.account_eth < ONE_ETH {
            return Err(format!("account_eth is {} wei, at least 1 ETH (10^18 wei) to pay for gas", self.account_eth));
        }
        if self.blueprint.jobs.is_empty() {
            return Err("the blueprint needs at least one job".into());
        }
        Ok(())
    }
}

/// Largest operator set of a service (`VouchProtocol.MAX_OPERATORS`).
const MAX_OPERATORS: usize = 191;
