//! The connection to one deployment: the RPC endpoint, checked against the address book, with the protocol's tokens
//! and (for commands that send transactions) the transaction key's wallet. Every contract read and transaction goes
//! through here, so reverts are decoded and explained the same way everywhere.

use std::{future::IntoFuture, path::PathBuf, time::Duration};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    eips::BlockNumberOrTag,
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
    transports::{RpcError, TransportError},
};
use alloy_primitives::{Address, U256};
use eyre::{Report, WrapErr, bail, eyre};
use vouch_contracts::{
    AddressBook, AddressBookError, CallError, Contract, KeyRegistry::KeyRegistryInstance,
    VouchProtocol::VouchProtocolInstance, VouchSlasher::VouchSlasherInstance, VouchStaking::VouchStakingInstance,
    VouchUSD,
};

use crate::{
    amount::Token,
    config::Settings,
    output::Output,
    revert::{self, Tokens},
};

/// A checked connection to the deployment named by the address book.
pub(crate) struct Chain {
    /// The RPC URL, as given.
    pub(crate) rpc: String,
    /// The provider (with the transaction key's wallet when one was unlocked).
    pub(crate) provider: DynProvider,
    /// The deployment.
    pub(crate) book: AddressBook,
    /// Where the address book was read from.
    pub(crate) book_path: PathBuf,
    /// The payment token (prices, fees, rewards).
    pub(crate) payment: Token,
    /// The stake token.
    pub(crate) stake: Token,
    /// The transaction key's address, when one was unlocked.
    sender: Option<Address>,
    timeout: Duration,
    pub(crate) out: Output,
}

/// "cannot reach RPC at …" for a transport failure (connection refused, DNS, timeout).
fn unreachable(rpc: &str, source: Option<Report>) -> Report {
    let message = format!("cannot reach RPC at {rpc}: is the devnet running? `vouch devnet up`");
    match source {
        Some(source) => source.wrap_err(message),
        None => eyre!(message),
    }
}

impl Chain {
    /// Connects to `settings.rpc`, confirms the address book describes that chain, and reads the tokens.
    pub(crate) async fn connect(
        settings: &Settings,
        out: Output,
        signer: Option<PrivateKeySigner>,
    ) -> eyre::Result<Self> {
        let rpc = settings.rpc.value.clone();
        let url: alloy::transports::http::reqwest::Url =
            rpc.parse().map_err(|e| eyre!("RPC URL `{rpc}` ({}) is not a URL: {e}", settings.rpc.source))?;
        let sender = signer.as_ref().map(PrivateKeySigner::address);
        let provider = match signer {
            Some(signer) => ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased(),
            None => ProviderBuilder::new().connect_http(url).erased(),
        };
        let timeout = Duration::from_secs(settings.timeout.value);
        let chain_id = match tokio::time::timeout(timeout, provider.get_chain_id()).await {
            Err(_) => return Err(unreachable(&rpc, Some(eyre!("no answer to eth_chainId within {timeout:?}")))),
            Ok(Err(RpcError::Transport(kind))) => return Err(unreachable(&rpc, Some(Report::new(kind)))),
            Ok(Err(e)) => return Err(Report::new(e).wrap_err(format!("the RPC at {rpc} refused eth_chainId"))),
            Ok(Ok(id)) => id,
        };
        out.detail(&format!("connected to {rpc} (chain {chain_id})"));

        let book_path = settings.addresses.value.clone();
        let book = AddressBook::load(&book_path).map_err(|e| match e {
            AddressBookError::NotFound { path } => eyre!(
                "address book {} does not exist: start a devnet (`vouch devnet up --datadir {}`) or pass --addresses <FILE>",
                path.display(),
                settings.datadir.value.display()
            ),
            other => Report::new(other),
        })?;
        if book.chain_id != chain_id {
            bail!(
                "the address book {} is for chain {}, but the RPC at {rpc} serves chain {chain_id}: wrong --rpc, or a stale \
                 address book",
                book_path.display(),
                book.chain_id
            );
        }
        book.check(&provider).await.map_err(|e| {
            Report::new(e).wrap_err(format!(
                "the address book {} does not match the chain at {rpc} (a restarted devnet? run `vouch devnet up` again)",
                book_path.display()
            ))
        })?;

        let token = |address: Address| {
            let provider = provider.clone();
            async move {
                let erc20 = VouchUSD::new(address, &provider);
                let symbol = erc20.symbol().call().await.wrap_err_with(|| format!("reading symbol() of {address}"))?;
                let decimals =
                    erc20.decimals().call().await.wrap_err_with(|| format!("reading decimals() of {address}"))?;
                eyre::Ok(Token { address, symbol, decimals })
            }
        };
        let payment = token(book.contracts.vouch_usd).await?;
        let stake = token(book.contracts.stake_token).await?;
        Ok(Self { rpc, provider, book, book_path, payment, stake, sender, timeout, out })
    }

    /// The chain id (the address book's, confirmed against the RPC).
    pub(crate) const fn chain_id(&self) -> u64 {
        self.book.chain_id
    }

    /// The transaction key's address.
    pub(crate) fn sender(&self) -> eyre::Result<Address> {
        self.sender.ok_or_else(|| eyre!("this command sends transactions: choose a transaction key with --from"))
    }

    /// `VouchProtocol`.
    pub(crate) fn protocol(&self) -> VouchProtocolInstance<&DynProvider> {
        VouchProtocolInstance::new(self.book.contracts.protocol, &self.provider)
    }

    /// `VouchStaking`.
    pub(crate) fn staking(&self) -> VouchStakingInstance<&DynProvider> {
        VouchStakingInstance::new(self.book.contracts.staking, &self.provider)
    }

    /// `KeyRegistry`.
    pub(crate) fn registry(&self) -> KeyRegistryInstance<&DynProvider> {
        KeyRegistryInstance::new(self.book.contracts.key_registry, &self.provider)
    }

    /// `VouchSlasher`.
    pub(crate) fn slasher(&self) -> VouchSlasherInstance<&DynProvider> {
        VouchSlasherInstance::new(self.book.contracts.slasher, &self.provider)
    }

    /// An ERC-20 (the ABI of `VouchUSD` covers every ERC-20 read and `approve`).
    pub(crate) fn erc20(&self, token: &Token) -> vouch_contracts::VouchUSD::VouchUSDInstance<&DynProvider> {
        vouch_contracts::VouchUSD::VouchUSDInstance::new(token.address, &self.provider)
    }

    /// Awaits a contract read, explaining a failure (`what` names the call, e.g. `VouchProtocol.getService`).
    pub(crate) async fn read<T>(
        &self,
        contract: Contract,
        what: &str,
        call: impl IntoFuture<Output = Result<T, alloy::contract::Error>>,
    ) -> eyre::Result<T> {
        call.await.map_err(|e| self.explain(&format!("reading {what}"), CallError::for_contract(contract, e), None))
    }

    /// Block time of the latest block (what the contracts compare deadlines with).
    pub(crate) async fn now(&self) -> eyre::Result<u64> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.transport("reading the latest block", e))?
            .ok_or_else(|| eyre!("the RPC returned no latest block"))?;
        Ok(block.header.timestamp)
    }

    /// Balance of `account` in `token`.
    pub(crate) async fn balance(&self, token: &Token, account: Address) -> eyre::Result<U256> {
        let c = self.erc20(token);
        self.read(Contract::VouchUsd, &format!("{}.balanceOf", token.symbol), c.balanceOf(account).call()).await
    }

    /// Fails with a human message unless `account` holds at least `needed` of `token`.
    pub(crate) async fn require_balance(&self, token: &Token, account: Address, needed: U256) -> eyre::Result<()> {
        let balance = self.balance(token, account).await?;
        if balance < needed {
            bail!(
                "insufficient {} balance: {account} holds {}, needs {}",
                token.symbol,
                token.format(balance),
                token.format(needed)
            );
        }
        Ok(())
    }

    /// Approves `spender` for exactly `amount` of `token` unless the current allowance already covers it.
    pub(crate) async fn approve(&self, token: &Token, spender: Address, amount: U256, why: &str) -> eyre::Result<()> {
        let owner = self.sender()?;
        let c = self.erc20(token);
        let allowance = self
            .read(Contract::VouchUsd, &format!("{}.allowance", token.symbol), c.allowance(owner, spender).call())
            .await?;
        if allowance >= amount {
            self.out.detail(&format!("allowance {} already covers {}", token.format(allowance), token.format(amount)));
            return Ok(());
        }
        self.send(
            &format!("approving {} for {why}", token.format(amount)),
            Contract::VouchUsd,
            Some(token),
            c.approve(spender, amount),
        )
        .await?;
        Ok(())
    }

    /// Sends a transaction and waits for its receipt; a revert (at estimation or on chain) is decoded and explained.
    /// `moved` is the token the transaction moves, if any (to print ERC-20 errors in its units).
    pub(crate) async fn send<P, D>(
        &self,
        action: &str,
        contract: Contract,
        moved: Option<&Token>,
        call: CallBuilder<P, D>,
    ) -> eyre::Result<TransactionReceipt>
    where
        P: Provider,
        D: CallDecoder,
    {
        self.sender()?;
        self.out.progress(&format!("{action}…"));
        let pending =
            call.send().await.map_err(|e| self.explain(action, CallError::for_contract(contract, e), moved))?;
        let tx_hash = *pending.tx_hash();
        self.out.detail(&format!("transaction {tx_hash}"));
        let receipt = pending
            .with_timeout(Some(self.timeout))
            .get_receipt()
            .await
            .map_err(|e| self.explain(action, CallError::from(e), moved))?;
        if !receipt.status() {
            bail!("{action}: transaction {tx_hash} reverted");
        }
        self.out.detail(&format!(
            "mined in block {}, gas used {}",
            receipt.block_number.map_or_else(|| "?".to_owned(), |b| b.to_string()),
            receipt.gas_used
        ));
        Ok(receipt)
    }

    /// A failed call or transaction as a human error: a decoded revert in words, a transport failure as "cannot
    /// reach", gas money as "no ETH", anything else with alloy's own message.
    pub(crate) fn explain(&self, action: &str, err: CallError, moved: Option<&Token>) -> Report {
        match err {
            CallError::Reverted(decoded) => {
                let tokens = Tokens { payment: &self.payment, stake: &self.stake, moved };
                eyre!("{action} failed: {}", revert::describe(&decoded, tokens))
            }
            CallError::Other(alloy::contract::Error::TransportError(RpcError::Transport(kind))) => {
                unreachable(&self.rpc, Some(Report::new(kind)))
            }
            CallError::Other(other) => {
                let text = other.to_string();
                if text.contains("insufficient funds") {
                    let who = self.sender.map_or_else(|| "the sender".to_owned(), |a| a.to_string());
                    eyre!("{action} failed: {who} has not enough ETH to pay for gas ({text})")
                } else {
                    Report::new(other).wrap_err(format!("{action} failed"))
                }
            }
        }
    }

    /// A raw provider request's failure.
    pub(crate) fn transport(&self, action: &str, err: TransportError) -> Report {
        self.explain(action, CallError::from(err), None)
    }

    /// Reads logs of event `E` emitted by `address` since the deployment, filtered by `topics` (index 1..=3).
    pub(crate) async fn logs<E: SolEvent>(
        &self,
        address: Address,
        topic1: Option<alloy_primitives::B256>,
        topic2: Option<alloy_primitives::B256>,
    ) -> eyre::Result<Vec<E>> {
        let mut filter = alloy::rpc::types::Filter::new()
            .address(address)
            .event_signature(E::SIGNATURE_HASH)
            .from_block(self.book.deployed_at_block);
        if let Some(t) = topic1 {
            filter = filter.topic1(t);
        }
        if let Some(t) = topic2 {
            filter = filter.topic2(t);
        }
        let logs = self.provider.get_logs(&filter).await.map_err(|e| self.transport("reading event logs", e))?;
        logs.iter().map(|log| log.log_decode::<E>().map(|l| l.inner.data).wrap_err("decoding an event log")).collect()
    }
}

/// The first event `E` in a receipt.
pub(crate) fn event<E: SolEvent>(receipt: &TransactionReceipt) -> Option<E> {
    receipt.inner.logs().iter().find_map(|log| log.log_decode::<E>().ok()).map(|log| log.inner.data)
}
