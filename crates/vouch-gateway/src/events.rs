//! The chain-event watcher: keeps the gateway's caches ([`ChainView`]: services and endpoints; [`Catalogue`]: the
//! listing and blueprint metadata) current by reading the deployment's events (`eth_getLogs`) every poll interval
//! and dropping exactly what each one changed ([`invalidation`]). Design: `docs/design/catalogue-events.md`.
//!
//! - It starts at the chain head and drops every cache once (a read made before that cannot be matched to events).
//! - Each poll reads the head block, then the logs of the blocks after the last one read, at most [`MAX_SPAN`]
//!   blocks per query (halved after a failed query, doubled back after a good one), filtered by contract address
//!   and event signature, so the busy events (calls, settlements) are never transferred.
//! - A block already read that is no longer canonical (the head went back, or the remembered hash changed) drops
//!   every cache: invalidating too much is safe, so no confirmation depth is waited for.
//! - RPC errors are retried on the next poll from the same block: no block is skipped while it may still be read.
//!   Events that cannot be read for [`BACKSTOP_TTL`] while the head can (a gap the watcher cannot cover) are skipped
//!   with a warning and every cache dropped. Whatever happens, no entry outlives the backstop TTL.

use std::{
    future::{Future, IntoFuture},
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use alloy_primitives::{Address, B256};
use tokio::{task::JoinHandle, time::MissedTickBehavior};
use vouch_contracts::{ContractAddresses, KeyRegistry, VouchProtocol, VouchStaking, view::ChainView};
use vouch_primitives::ServiceId;

use crate::catalogue::Catalogue;

/// How long a cached service, endpoint, listing or blueprint lives when no event drops it earlier: a backstop for
/// events missed in ways the watcher cannot see (an RPC node that answers with logs it does not have).
pub const BACKSTOP_TTL: Duration = Duration::from_secs(60);

/// The default poll interval (`events_poll_ms`): about one block of a fast chain.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Most blocks asked for in one `eth_getLogs`.
pub const MAX_SPAN: u64 = 2_000;

/// Longest wait for one RPC answer.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// What one event makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// A service's status (`ServiceActivated`, `ServiceTerminated`): its `ServiceInfo` and the listing.
    Service(ServiceId),
    /// A blueprint's metadata (`BlueprintMetadataUpdated`): the catalogue's copy (verification modes, names,
    /// schemas) and the listing.
    Blueprint(u64),
    /// An operator's endpoint (`OperatorRegistered`, `EndpointUpdated`).
    Endpoint(Address),
    /// The keys of the services an operator is in (`KeyRegistered`).
    Key(Address),
    /// Everything: a watched event that does not decode.
    All,
}

/// The watched events: emitting contract and signature hash.
fn watched(c: &ContractAddresses) -> [(Address, B256); 6] {
    [
        (c.protocol, VouchProtocol::ServiceActivated::SIGNATURE_HASH),
        (c.protocol, VouchProtocol::ServiceTerminated::SIGNATURE_HASH),
        (c.protocol, VouchProtocol::BlueprintMetadataUpdated::SIGNATURE_HASH),
        (c.staking, VouchStaking::OperatorRegistered::SIGNATURE_HASH),
        (c.staking, VouchStaking::EndpointUpdated::SIGNATURE_HASH),
        (c.key_registry, KeyRegistry::KeyRegistered::SIGNATURE_HASH),
    ]
}

/// The `eth_getLogs` filter of the watched events in blocks `from..=to`.
pub fn filter(contracts: &ContractAddresses, from: u64, to: u64) -> Filter {
    let events = watched(contracts);
    let mut addresses: Vec<Address> = events.iter().map(|(a, _)| *a).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let signatures: Vec<B256> = events.iter().map(|(_, s)| *s).collect();
    Filter::new().address(addresses).event_signature(signatures).from_block(from).to_block(to)
}

/// Decodes `log` as `E` and maps it; a log that does not decode invalidates everything.
fn decoded<E: SolEvent>(log: &Log, f: impl FnOnce(E) -> Invalidation) -> Invalidation {
    log.log_decode::<E>().map_or(Invalidation::All, |l| f(l.inner.data))
}

/// What `log` makes stale, or `None` if it is not a watched event of this deployment. See the module docs and
/// `docs/design/catalogue-events.md` for why the other events change nothing cached.
pub fn invalidation(contracts: &ContractAddresses, log: &Log) -> Option<Invalidation> {
    let topic0 = *log.topic0()?;
    let address = log.address();
    let (_, signature) = watched(contracts).into_iter().find(|w| *w == (address, topic0))?;
    Some(if signature == VouchProtocol::ServiceActivated::SIGNATURE_HASH {
        decoded(log, |e: VouchProtocol::ServiceActivated| Invalidation::Service(ServiceId(e.serviceId)))
    } else if signature == VouchProtocol::ServiceTerminated::SIGNATURE_HASH {
        decoded(log, |e: VouchProtocol::ServiceTerminated| Invalidation::Service(ServiceId(e.serviceId)))
    } else if signature == VouchProtocol::BlueprintMetadataUpdated::SIGNATURE_HASH {
        decoded(log, |e: VouchProtocol::BlueprintMetadataUpdated| Invalidation::Blueprint(e.blueprintId))
    } else if signature == VouchStaking::OperatorRegistered::SIGNATURE_HASH {
        decoded(log, |e: VouchStaking::OperatorRegistered| Invalidation::Endpoint(e.operator))
    } else if signature == VouchStaking::EndpointUpdated::SIGNATURE_HASH {
        decoded(log, |e: VouchStaking::EndpointUpdated| Invalidation::Endpoint(e.operator))
    } else {
        decoded(log, |e: KeyRegistry::KeyRegistered| Invalidation::Key(e.operator))
    })
}

/// The head block as the watcher needs it.
#[derive(Debug, Clone, Copy)]
struct Head {
    number: u64,
    hash: B256,
    parent: B256,
}

/// Where the watcher is.
#[derive(Debug)]
struct Cursor {
    /// The last block whose events were applied, and its hash (`None` before the first poll).
    last: Option<(u64, B256)>,
    /// Blocks per `eth_getLogs`.
    span: u64,
    /// When the polls started failing.
    failing_since: Option<Instant>,
}

/// A poll that failed.
#[derive(Debug)]
struct PollError {
    reason: String,
    /// The head, if it was read.
    head: Option<Head>,
}

/// Runs `call` with [`RPC_TIMEOUT`].
async fn rpc<T, E: std::fmt::Display>(what: &str, call: impl IntoFuture<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer in {RPC_TIMEOUT:?}")),
    }
}

/// The watcher task.
#[derive(Debug)]
struct Watcher {
    provider: DynProvider,
    contracts: ContractAddresses,
    chain: ChainView,
    catalogue: Catalogue,
    interval: Duration,
}

impl Watcher {
    async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut cursor = Cursor { last: None, span: MAX_SPAN, failing_since: None };
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.step(&mut cursor) => {}
            }
        }
    }

    /// One poll, and what its failure means.
    async fn step(&self, cursor: &mut Cursor) {
        let error = match self.poll(cursor).await {
            Ok(()) => {
                if let Some(since) = cursor.failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), "reading chain events again");
                }
                return;
            }
            Err(e) => e,
        };
        let since = match cursor.failing_since {
            Some(since) => {
                tracing::debug!(error = %error.reason, "cannot read chain events");
                since
            }
            None => {
                tracing::warn!(
                    error = %error.reason,
                    "cannot read chain events; retrying from the same block (cached entries still expire after {:?})",
                    BACKSTOP_TTL,
                );
                *cursor.failing_since.insert(Instant::now())
            }
        };
        if since.elapsed() >= BACKSTOP_TTL
            && let Some(head) = error.head
        {
            let from = cursor.last.map_or(head.number, |(n, _)| n.saturating_add(1));
            tracing::warn!(
                from,
                to = head.number,
                error = %error.reason,
                "the events of these blocks could not be read for {BACKSTOP_TTL:?}: skipping them, every cached \
                 service, endpoint and blueprint dropped",
            );
            self.invalidate_all();
            cursor.last = Some((head.number, head.hash));
            cursor.failing_since = None;
        }
    }

    /// Reads the events of the blocks after `cursor.last` up to the head and applies them.
    async fn poll(&self, cursor: &mut Cursor) -> Result<(), PollError> {
        let head = self.head().await.map_err(|reason| PollError { reason, head: None })?;
        let failed = |reason| PollError { reason, head: Some(head) };
        let Some((last, last_hash)) = cursor.last else {
            // What was cached before now cannot be matched to the events that follow.
            tracing::debug!(block = head.number, "watching chain events");
            self.invalidate_all();
            cursor.last = Some((head.number, head.hash));
            return Ok(());
        };
        if head.number < last || (head.number == last && head.hash != last_hash) {
            tracing::info!(head = head.number, last, "the chain went back below a block already read: caches dropped");
            self.invalidate_all();
            cursor.last = Some((head.number, head.hash));
            return Ok(());
        }
        if head.number == last {
            return Ok(());
        }
        let canonical = if head.number == last + 1 {
            head.parent == last_hash
        } else {
            self.block_hash(last).await.map_err(failed)? == Some(last_hash)
        };
        if !canonical {
            tracing::info!(block = last, "a block already read was replaced (reorg): caches dropped");
            self.invalidate_all();
        }
        let mut from = last + 1;
        while from <= head.number {
            let to = head.number.min(from.saturating_add(cursor.span - 1));
            let logs = match rpc("eth_getLogs", self.provider.get_logs(&filter(&self.contracts, from, to))).await {
                Ok(logs) => logs,
                Err(reason) => {
                    // Maybe too many blocks for this node: fewer next time. Everything from `last + 1` is read
                    // again (applying an event twice only drops an entry twice).
                    cursor.span = (cursor.span / 2).max(1);
                    return Err(failed(format!("{reason} (blocks {from}..={to})")));
                }
            };
            for log in &logs {
                self.apply(log);
            }
            cursor.span = cursor.span.saturating_mul(2).min(MAX_SPAN);
            from = to + 1;
        }
        cursor.last = Some((head.number, head.hash));
        Ok(())
    }

    async fn head(&self) -> Result<Head, String> {
        let block = rpc("latest block", self.provider.get_block_by_number(BlockNumberOrTag::Latest))
            .await?
            .ok_or_else(|| "latest block: the node returned none".to_owned())?;
        Ok(Head { number: block.header.number, hash: block.header.hash, parent: block.header.parent_hash })
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        let block = rpc("block by number", self.provider.get_block_by_number(number.into())).await?;
        Ok(block.map(|b| b.header.hash))
    }

    fn apply(&self, log: &Log) {
        let Some(what) = invalidation(&self.contracts, log) else { return };
        tracing::debug!(?what, block = ?log.block_number, "chain event: cache invalidated");
        match what {
            Invalidation::Service(id) => {
                self.chain.invalidate_service(id);
                self.catalogue.invalidate_service(id);
            }
            Invalidation::Blueprint(id) => self.catalogue.invalidate_blueprint(id),
            Invalidation::Endpoint(operator) => self.chain.invalidate_endpoint(operator),
            Invalidation::Key(operator) => self.chain.invalidate_key(operator),
            Invalidation::All => self.invalidate_all(),
        }
    }

    fn invalidate_all(&self) {
        self.chain.invalidate_all();
        self.catalogue.invalidate_all();
    }
}

/// Starts the watcher: every `interval` (at least 50 ms), the deployment's events since the last poll invalidate
/// what they changed in `chain` and `catalogue`, until `shutdown`.
pub(crate) fn spawn(
    provider: DynProvider,
    contracts: ContractAddresses,
    chain: ChainView,
    catalogue: Catalogue,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let interval = interval.max(Duration::from_millis(50));
    tokio::spawn(Watcher { provider, contracts, chain, catalogue, interval }.run(shutdown))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{LogData, U256};
    use alloy_primitives::address;

    use super::*;

    fn contracts() -> ContractAddresses {
        ContractAddresses {
            vouch_usd: address!("0x0000000000000000000000000000000000000001"),
            stake_token: address!("0x0000000000000000000000000000000000000002"),
            key_registry: address!("0x0000000000000000000000000000000000000003"),
            staking: address!("0x0000000000000000000000000000000000000004"),
            protocol_admin: address!("0x0000000000000000000000000000000000000005"),
            protocol: address!("0x0000000000000000000000000000000000000006"),
            slasher: address!("0x0000000000000000000000000000000000000007"),
        }
    }

    fn log(address: Address, data: LogData) -> Log {
        Log { inner: alloy::primitives::Log { address, data }, ..Log::default() }
    }

    #[test]
    fn each_watched_event_invalidates_what_it_changes() {
        let c = contracts();
        let operator = address!("0x00000000000000000000000000000000000000aa");
        let terminated = VouchProtocol::ServiceTerminated { serviceId: 7 };
        let activated = VouchProtocol::ServiceActivated {
            serviceId: 8,
            keySet: Address::ZERO,
            stakes: vec![U256::from(1u64)],
            totalStake: U256::from(1u64),
        };
        let metadata = VouchProtocol::BlueprintMetadataUpdated {
            blueprintId: 3,
            metadataUri: "file:///x".into(),
            metadataHash: B256::ZERO,
        };
        let endpoint = VouchStaking::EndpointUpdated { operator, endpoint: "http://127.0.0.1:1".into() };
        let registered =
            VouchStaking::OperatorRegistered { operator, endpoint: "http://127.0.0.1:1".into(), commissionBps: 0 };
        let key = KeyRegistry::KeyRegistered { operator, keyHash: B256::ZERO, pubkey: vec![1u8; 128].into() };
        let cases = [
            (log(c.protocol, terminated.encode_log_data()), Some(Invalidation::Service(ServiceId(7)))),
            (log(c.protocol, activated.encode_log_data()), Some(Invalidation::Service(ServiceId(8)))),
            (log(c.protocol, metadata.encode_log_data()), Some(Invalidation::Blueprint(3))),
            (log(c.staking, endpoint.encode_log_data()), Some(Invalidation::Endpoint(operator))),
            (log(c.staking, registered.encode_log_data()), Some(Invalidation::Endpoint(operator))),
            (log(c.key_registry, key.encode_log_data()), Some(Invalidation::Key(operator))),
            // The right event from another contract (another deployment) is not ours.
            (log(c.staking, terminated.encode_log_data()), None),
            (log(c.slasher, endpoint.encode_log_data()), None),
            // Events that change nothing cached.
            (
                log(c.protocol, VouchProtocol::PublicAccessSet { serviceId: 7, publicAccess: false }.encode_log_data()),
                None,
            ),
            (log(c.staking, VouchStaking::Jailed { operator, until: 1 }.encode_log_data()), None),
            // A watched signature whose data does not decode: drop everything.
            (
                log(
                    c.protocol,
                    LogData::new_unchecked(vec![VouchProtocol::ServiceTerminated::SIGNATURE_HASH], vec![].into()),
                ),
                Some(Invalidation::All),
            ),
        ];
        for (i, (log, expected)) in cases.iter().enumerate() {
            assert_eq!(invalidation(&c, log), *expected, "case {i}");
        }
    }

    #[test]
    fn the_filter_names_the_watched_contracts_and_events_only() {
        let c = contracts();
        let f = filter(&c, 10, 20);
        let json = serde_json::to_value(&f).unwrap_or_default();
        assert_eq!(json["fromBlock"], "0xa");
        assert_eq!(json["toBlock"], "0x14");
        let addresses = json["address"].as_array().map(Vec::len);
        assert_eq!(addresses, Some(3), "protocol, staking, key registry: {json}");
        let topics = json["topics"][0].as_array().map(Vec::len);
        assert_eq!(topics, Some(6), "{json}");
    }
}
