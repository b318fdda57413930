//! [`Watcher`]: polls the chain, undoes reorganizations, records confirmed calls and reports them.

use std::{future::Future, pin::pin, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::B256,
    providers::Provider,
    rpc::types::{Filter, Log},
};
use tokio::sync::mpsc;
use vouch_primitives::CallId;

use super::{
    ChainCall, StateStore, WatcherConfig, WatcherError, call_log,
    state_store::{FoundCall, ScannedRange},
};

/// Most block ranges read by one [`Watcher::poll_once`], so that a long catch-up reports calls as it goes.
const MAX_RANGES_PER_POLL: usize = 10;

/// Longest pause between retries after RPC errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one [`Watcher::poll_once`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Calls recorded by this poll, oldest first: newly found, or found again after they had vanished. Pending ones
    /// are to be executed; [`super::CallStatus::InputsOffChain`] ones are not executed from the chain.
    pub new_calls: Vec<ChainCall>,
    /// Calls whose block was reorged away (now [`super::CallStatus::Vanished`]): whatever is in flight for them must
    /// stop, and no certificate may be submitted for them.
    pub vanished: Vec<CallId>,
    /// The last block read after this poll (the checkpoint), or `start_block − 1` (saturating) when none is yet.
    pub checkpoint: u64,
}

/// What [`Watcher::run`] sends to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatcherEvent {
    /// Calls recorded in the store ([`PollOutcome::new_calls`]).
    NewCalls(Vec<ChainCall>),
    /// Calls whose block was reorged away ([`PollOutcome::vanished`]); always sent before the new calls of the same
    /// poll, since a call may vanish and be found again in another block.
    Vanished(Vec<CallId>),
}

/// Reads on-chain calls of the protocol into the [`StateStore`]: confirmed blocks only, from the durable checkpoint
/// (never "N blocks back"), reporting the calls of blocks that a reorganization removed.
///
/// Each poll: (1) checks that the checkpoint block is still canonical, else walks back through the stored block
/// hashes to the fork point, marks the calls above it vanished and rewinds; (2) reads the `CallOpened` /
/// `CallInputs` logs of `checkpoint + 1 ..= head − confirmations` in ranges of at most `max_block_range` blocks,
/// each range recorded with the new checkpoint in one transaction. A range is recorded only if the chain did not
/// change while it was read (its last block and the previous checkpoint keep their hashes, and every block with a
/// call is canonical).
#[derive(Debug, Clone)]
pub struct Watcher<P> {
    provider: P,
    store: StateStore,
    config: WatcherConfig,
}

impl<P: Provider + Clone> Watcher<P> {
    /// A watcher reading through `provider` into `store`.
    pub fn new(provider: P, store: StateStore, config: WatcherConfig) -> Self {
        Self { provider, store, config }
    }

    /// The store the watcher records into.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Its configuration.
    pub fn config(&self) -> &WatcherConfig {
        &self.config
    }

    /// One poll: handles a reorganization, then reads confirmed blocks past the checkpoint (at most
    /// `10 × max_block_range` of them). If an RPC error or a chain change interrupts it after something was recorded,
    /// the error is logged and what was recorded is returned; the next poll resumes from the checkpoint.
    pub async fn poll_once(&self) -> Result<PollOutcome, WatcherError> {
        self.poll().await.map(|(outcome, _)| outcome)
    }

    /// Polls until `shutdown` completes, sending what each poll finds to `events`. RPC errors and chain changes are
    /// logged and retried with exponential backoff (from `poll_interval` up to 30 s): the watcher never stops on
    /// them. It stops with an error only when the store fails, and with `Ok` on shutdown or when `events` is closed.
    ///
    /// Everything sent was recorded first: a node that restarts finds unhandled calls with
    /// [`StateStore::pending_calls`].
    pub async fn run(
        self,
        events: mpsc::Sender<WatcherEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WatcherError> {
        let mut shutdown = pin!(shutdown);
        let mut backoff = self.config.poll_interval;
        loop {
            let polled = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                polled = self.poll() => polled,
            };
            let delay = match polled {
                Ok((outcome, caught_up)) => {
                    backoff = self.config.poll_interval;
                    let PollOutcome { new_calls, vanished, .. } = outcome;
                    let batches = [
                        (!vanished.is_empty()).then_some(WatcherEvent::Vanished(vanished)),
                        (!new_calls.is_empty()).then_some(WatcherEvent::NewCalls(new_calls)),
                    ];
                    for event in batches.into_iter().flatten() {
                        tokio::select! {
                            biased;
                            () = &mut shutdown => return Ok(()),
                            sent = events.send(event) => if sent.is_err() {
                                tracing::info!("the watcher's event receiver is closed; stopping");
                                return Ok(());
                            },
                        }
                    }
                    if caught_up { self.config.poll_interval } else { Duration::ZERO }
                }
                Err(error) if error.is_fatal() => {
                    tracing::error!(%error, "chain watcher stops");
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "chain watcher poll failed; retrying");
                    let delay = backoff;
                    backoff = backoff.saturating_mul(2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    delay
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// [`Watcher::poll_once`], and whether the checkpoint reached `head − confirmations`.
    async fn poll(&self) -> Result<(PollOutcome, bool), WatcherError> {
        let mut outcome = PollOutcome::default();
        let result = match self.poll_into(&mut outcome).await {
            Err(error) if error.is_fatal() => return Err(error),
            result => result,
        };
        outcome.checkpoint = match self.blocking(StateStore::checkpoint).await? {
            Some((number, _)) => number,
            None => self.config.start_block.saturating_sub(1),
        };
        match result {
            Ok(caught_up) => Ok((outcome, caught_up)),
            Err(error) if !error.is_fatal() && (!outcome.new_calls.is_empty() || !outcome.vanished.is_empty()) => {
                tracing::warn!(%error, "chain watcher poll interrupted; reporting what it recorded");
                Ok((outcome, false))
            }
            Err(error) => Err(error),
        }
    }

    async fn poll_into(&self, outcome: &mut PollOutcome) -> Result<bool, WatcherError> {
        let head = self.provider.get_block_number().await.map_err(WatcherError::rpc("eth_blockNumber"))?;
        let Some(mut checkpoint) = self.undo_reorg(head, outcome).await? else {
            return Ok(true);
        };
        let Some(target) = head.checked_sub(self.config.confirmations) else {
            return Ok(true);
        };
        let mut from = checkpoint.map_or(self.config.start_block, |(number, _)| number.saturating_add(1));
        let span = self.config.max_block_range.max(1);
        for _ in 0..MAX_RANGES_PER_POLL {
            if from > target {
                return Ok(true);
            }
            let to = target.min(from.saturating_add(span - 1));
            let range = self.read_range(checkpoint, from, to).await?;
            let next = range.checkpoint;
            let new_calls = self.blocking(move |store| store.record_range(&range)).await?;
            if !new_calls.is_empty() {
                tracing::info!(count = new_calls.len(), from, to, "found calls on chain");
            }
            outcome.new_calls.extend(new_calls);
            checkpoint = Some(next);
            from = to.saturating_add(1);
        }
        Ok(from > target)
    }

    /// Checks that the checkpoint is still canonical; if not, rewinds to the fork point and records the vanished
    /// calls in `outcome`. Returns the checkpoint to read from, or `None` (outer) when the node is behind the
    /// checkpoint and this poll should wait.
    async fn undo_reorg(
        &self,
        head: u64,
        outcome: &mut PollOutcome,
    ) -> Result<Option<Option<(u64, B256)>>, WatcherError> {
        let stored = self.blocking(StateStore::recent_blocks).await?;
        let Some(&(checkpoint, _)) = stored.first() else { return Ok(Some(None)) };
        if checkpoint > head {
            // A lagging RPC node (or a rolled-back devnet): a reorganization shows as different hashes, not a shorter
            // chain, so wait for the node to catch up.
            tracing::debug!(head, checkpoint, "the RPC endpoint is behind the checkpoint; waiting");
            return Ok(None);
        }
        let mut fork = None;
        for (index, &(number, hash)) in stored.iter().enumerate() {
            let canonical = self.block_hash(number).await?;
            if canonical == hash {
                if index == 0 {
                    return Ok(Some(Some((number, hash))));
                }
                fork = Some((number, hash));
                break;
            }
        }
        match fork {
            Some((number, _)) => tracing::warn!(checkpoint, fork = number, "chain reorganization; rewinding"),
            None => tracing::error!(
                checkpoint,
                start_block = self.config.start_block,
                "chain reorganization deeper than every stored block; reading again from the start block"
            ),
        }
        let vanished = self.blocking(move |store| store.rewind(fork)).await?;
        if !vanished.is_empty() {
            tracing::warn!(count = vanished.len(), "calls vanished in a chain reorganization");
        }
        outcome.vanished.extend(vanished);
        Ok(Some(fork))
    }

    /// Reads the calls of blocks `from..=to` (the block before `from` is `previous`), checking that the chain did not
    /// change meanwhile.
    async fn read_range(
        &self,
        previous: Option<(u64, B256)>,
        from: u64,
        to: u64,
    ) -> Result<ScannedRange, WatcherError> {
        let to_hash = self.block_hash(to).await?;
        let filter = Filter::new()
            .address(self.config.protocol)
            .event_signature(call_log::call_event_topics())
            .from_block(from)
            .to_block(to);
        let logs: Vec<Log> = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(WatcherError::rpc(format!("eth_getLogs for blocks {from}..={to}")))?;
        let calls: Vec<FoundCall> = call_log::calls_from_logs(self.config.protocol, &logs, from, to)?;

        let mut blocks: Vec<(u64, B256)> = calls.iter().map(|c| (c.call.block_number, c.call.block_hash)).collect();
        blocks.dedup();
        // Every block with a call, the previous checkpoint and the last block must still be the ones seen: else the
        // logs may mix two forks. Checked after eth_getLogs, so they are canonical now.
        for &(number, hash) in blocks.iter().chain(previous.as_ref()).chain([&(to, to_hash)]) {
            let found = self.block_hash_opt(number).await?;
            if found != Some(hash) {
                return Err(WatcherError::ChainChanged { number, expected: hash, found, from, to });
            }
        }
        Ok(ScannedRange { calls, blocks, checkpoint: (to, to_hash) })
    }

    async fn block_hash(&self, number: u64) -> Result<B256, WatcherError> {
        self.block_hash_opt(number).await?.ok_or(WatcherError::BlockNotFound { number })
    }

    async fn block_hash_opt(&self, number: u64) -> Result<Option<B256>, WatcherError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(WatcherError::rpc(format!("eth_getBlockByNumber {number}")))?;
        Ok(block.map(|block| block.header.hash))
    }

    /// Runs a store operation off the async threads (SQLite with `synchronous = FULL` waits for the disk).
    async fn blocking<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&StateStore) -> Result<T, WatcherError> + Send + 'static,
    ) -> Result<T, WatcherError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || operation(&store))
            .await
            .map_err(|error| WatcherError::StoreTask(error.to_string()))?
    }
}
