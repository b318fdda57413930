//! Deploys the whole protocol in the order of docs/protocol.md ("Deploying"):
//!
//! tokens (unless existing ones are given) → `KeyRegistry` → `VouchStaking(stakeToken, paymentToken, registry,
//! unbondingDelay, commissionDelay, minSelfStake)` → the `ProtocolAdmin` library → `VouchProtocol(paymentToken,
//! staking, registry, treasury, protocolFeeBps)` linked against it → `VouchSlasher(protocol, staking, registry)` →
//! `staking.initialize(protocol, slasher)`, all sent by the provider's default signer, one after the other, each
//! waited for (one confirmation).

use alloy::{
    network::TransactionBuilder as _,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, WalletProvider},
    rpc::types::TransactionRequest,
    sol_types::SolConstructor,
};

use crate::{
    address_book::{ADDRESS_BOOK_VERSION, AddressBook, ContractAddresses},
    contracts::{
        Contract, PROTOCOL_ADMIN_LIBRARY, stake_token::StakeToken, vouch_protocol::VouchProtocol,
        vouch_slasher::VouchSlasher, vouch_staking::VouchStaking, vouch_usd::VouchUSD,
    },
    error::CallError,
    link::{Library, LinkError},
};

/// What to deploy and with which parameters. `Default` is a devnet: fresh dev tokens owned by the deployer, the
/// deployer as treasury, and the parameters of the contracts' integration tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployConfig {
    /// An existing payment token (EIP-3009, e.g. the chain's USDC). `None` (default): deploy `VouchUSD`.
    pub payment_token: Option<Address>,
    /// An existing stake token (plain ERC-20: no fee on transfer, no rebasing). `None` (default): deploy
    /// `StakeToken`.
    pub stake_token: Option<Address>,
    /// Owner (the only minter) of the dev tokens this deployment creates. `None` (default): the deployer.
    pub token_owner: Option<Address>,
    /// Receives the protocol fee, integer-division dust and swept surplus. `None` (default): the deployer.
    pub treasury: Option<Address>,
    /// Protocol fee in basis points of each call's price, ≤ 10,000. Default 500 (5%).
    pub protocol_fee_bps: u16,
    /// Seconds between an unstake request and its withdrawal. Every blueprint's longest job deadline plus its
    /// dispute window must be shorter (the longest deadline allowed is 7 days). Default 14 days.
    pub unbonding_delay: u64,
    /// Seconds between a commission proposal and when it may be applied. Default 3 days.
    pub commission_delay: u64,
    /// Least self-stake of an operator, in stake-token base units, > 0. Default 1,000 tokens of 18 decimals.
    pub min_self_stake: U256,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            payment_token: None,
            stake_token: None,
            token_owner: None,
            treasury: None,
            protocol_fee_bps: 500,
            unbonding_delay: 14 * DAY,
            commission_delay: 3 * DAY,
            min_self_stake: U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64)),
        }
    }
}

const DAY: u64 = 24 * 60 * 60;
const BPS: u16 = 10_000;

/// Why the deployment stopped. Contracts deployed before the failing step stay on chain (unused).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The stake and payment token are the same address.
    #[error("the stake token and the payment token must differ (both {0})")]
    SameToken(Address),
    /// `min_self_stake` is 0.
    #[error("min_self_stake must be greater than 0")]
    ZeroMinSelfStake,
    /// `protocol_fee_bps` is above 10,000.
    #[error("protocol_fee_bps is {0}, at most 10000")]
    FeeTooHigh(u16),
    /// The treasury is the zero address.
    #[error("the treasury must not be the zero address")]
    ZeroTreasury,
    /// An existing token given in the config has no code.
    #[error("no contract at the {role} {address} given in the deploy config")]
    NoCode {
        /// `payment token` or `stake token`.
        role: &'static str,
        /// The address given.
        address: Address,
    },
    /// `VouchProtocol`'s bytecode could not be linked against `ProtocolAdmin`.
    #[error("linking VouchProtocol: {0}")]
    Link(#[from] LinkError),
    /// A step's request failed or was refused by a contract (the revert decoded).
    #[error("{step}: {source}")]
    Step {
        /// The step, e.g. `deploy VouchProtocol` or `VouchStaking.initialize`.
        step: &'static str,
        /// What went wrong.
        source: CallError,
    },
    /// A step's transaction was mined but reverted.
    #[error("{step}: transaction {tx_hash} reverted")]
    Reverted {
        /// The step.
        step: &'static str,
        /// The transaction.
        tx_hash: B256,
    },
    /// A deployment's receipt has no contract address.
    #[error("{step}: receipt of {tx_hash} has no contract address")]
    NoContractAddress {
        /// The step.
        step: &'static str,
        /// The transaction.
        tx_hash: B256,
    },
}

/// Deploys the protocol with `provider`'s default signer as deployer and returns its address book.
///
/// `deployedAtBlock` is the block of the first transaction this deployment sent.
pub async fn deploy<P>(provider: &P, config: &DeployConfig) -> Result<AddressBook, DeployError>
where
    P: Provider + WalletProvider,
{
    let deployer = provider.default_signer_address();
    let treasury = config.treasury.unwrap_or(deployer);
    let token_owner = config.token_owner.unwrap_or(deployer);
    if let (Some(payment), Some(stake)) = (config.payment_token, config.stake_token)
        && payment == stake
    {
        return Err(DeployError::SameToken(payment));
    }
    if config.min_self_stake.is_zero() {
        return Err(DeployError::ZeroMinSelfStake);
    }
    if config.protocol_fee_bps > BPS {
        return Err(DeployError::FeeTooHigh(config.protocol_fee_bps));
    }
    if treasury.is_zero() {
        return Err(DeployError::ZeroTreasury);
    }
    for (role, token) in [("payment token", config.payment_token), ("stake token", config.stake_token)] {
        if let Some(address) = token {
            let code = provider.get_code_at(address).await.map_err(|e| step_err("read token code", e.into()))?;
            if code.is_empty() {
                return Err(DeployError::NoCode { role, address });
            }
        }
    }
    let chain_id = provider.get_chain_id().await.map_err(|e| step_err("eth_chainId", e.into()))?;

    let mut d = Deployer { provider, first_block: None };
    let vouch_usd = match config.payment_token {
        Some(address) => address,
        None => {
            let args = VouchUSD::constructorCall { initialOwner: token_owner };
            d.create(Contract::VouchUsd, "deploy VouchUSD", &[], &args.abi_encode()).await?
        }
    };
    let stake_token = match config.stake_token {
        Some(address) => address,
        None => {
            let args = StakeToken::constructorCall { initialOwner: token_owner };
            d.create(Contract::StakeToken, "deploy StakeToken", &[], &args.abi_encode()).await?
        }
    };
    let key_registry = d.create(Contract::KeyRegistry, "deploy KeyRegistry", &[], &[]).await?;
    let args = VouchStaking::constructorCall {
        stakeToken_: stake_token,
        paymentToken_: vouch_usd,
        keyRegistry_: key_registry,
        unbondingDelay_: config.unbonding_delay,
        commissionDelay_: config.commission_delay,
        minSelfStake_: config.min_self_stake,
    };
    let staking = d.create(Contract::Staking, "deploy VouchStaking", &[], &args.abi_encode()).await?;
    let protocol_admin = d.create(Contract::ProtocolAdmin, "deploy ProtocolAdmin", &[], &[]).await?;
    let args = VouchProtocol::constructorCall {
        paymentToken_: vouch_usd,
        staking_: staking,
        registry_: key_registry,
        treasury_: treasury,
        protocolFeeBps_: config.protocol_fee_bps,
    };
    let libraries = [Library { name: PROTOCOL_ADMIN_LIBRARY, address: protocol_admin }];
    let protocol = d.create(Contract::Protocol, "deploy VouchProtocol", &libraries, &args.abi_encode()).await?;
    let args = VouchSlasher::constructorCall { protocol, staking, registry: key_registry };
    let slasher = d.create(Contract::Slasher, "deploy VouchSlasher", &[], &args.abi_encode()).await?;

    let step = "VouchStaking.initialize";
    let staking_contract = VouchStaking::new(staking, provider);
    let pending = staking_contract
        .initialize(protocol, slasher)
        .send()
        .await
        .map_err(|e| step_err(step, CallError::for_contract(Contract::Staking, e)))?;
    let receipt = pending.get_receipt().await.map_err(|e| step_err(step, e.into()))?;
    if !receipt.status() {
        return Err(DeployError::Reverted { step, tx_hash: receipt.transaction_hash });
    }

    Ok(AddressBook {
        version: ADDRESS_BOOK_VERSION,
        chain_id,
        deployed_at_block: d.first_block.unwrap_or_default(),
        contracts: ContractAddresses {
            vouch_usd,
            stake_token,
            key_registry,
            staking,
            protocol_admin,
            protocol,
            slasher,
        },
        treasury,
    })
}

const fn step_err(step: &'static str, source: CallError) -> DeployError {
    DeployError::Step { step, source }
}

struct Deployer<'a, P> {
    provider: &'a P,
    first_block: Option<u64>,
}

impl<P: Provider> Deployer<'_, P> {
    /// Sends a contract creation (linked bytecode + ABI-encoded constructor arguments) and waits for its receipt.
    async fn create(
        &mut self,
        contract: Contract,
        step: &'static str,
        libraries: &[Library<'_>],
        constructor_args: &[u8],
    ) -> Result<Address, DeployError> {
        let mut code = contract.creation_code(libraries)?.to_vec();
        code.extend_from_slice(constructor_args);
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        let pending = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(|e| step_err(step, CallError::for_contract(contract, e)))?;
        let receipt = pending.get_receipt().await.map_err(|e| step_err(step, e.into()))?;
        let tx_hash = receipt.transaction_hash;
        if !receipt.status() {
            return Err(DeployError::Reverted { step, tx_hash });
        }
        let address = receipt.contract_address.ok_or(DeployError::NoContractAddress { step, tx_hash })?;
        if self.first_block.is_none() {
            self.first_block = receipt.block_number;
        }
        Ok(address)
    }
}
