//! [`WatcherConfig`]: which contract to watch, how deep a block must be, how often and how far to read.

use std::time::Duration;

use alloy::primitives::Address;

/// How the [`super::Watcher`] reads the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherConfig {
    /// The `VouchProtocol` contract whose `CallOpened` / `CallInputs` logs are read.
    pub protocol: Address,
    /// Blocks that must be built on top of a block before its calls are reported: the watcher reads up to
    /// `head − confirmations`. 0 reports calls of the head block itself (devnets); a reorganization deeper than
    /// this is still handled, by reporting the calls it removes as vanished.
    pub confirmations: u64,
    /// Pause between two polls of the chain (and the first retry delay after an RPC error).
    pub poll_interval: Duration,
    /// Most blocks asked for in one `eth_getLogs` request (RPC providers cap this).
    pub max_block_range: u64,
    /// First block read when the state store has no checkpoint yet: the protocol's deployment block
    /// (`AddressBook::deployed_at_block`). Later starts resume from the checkpoint and ignore it.
    pub start_block: u64,
}

impl WatcherConfig {
    /// Default [`WatcherConfig::confirmations`].
    pub const DEFAULT_CONFIRMATIONS: u64 = 2;
    /// Default [`WatcherConfig::poll_interval`].
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// Default [`WatcherConfig::max_block_range`].
    pub const DEFAULT_MAX_BLOCK_RANGE: u64 = 1_000;

    /// Watches `protocol` from block `start_block` with the default confirmations, interval and range.
    pub const fn new(protocol: Address, start_block: u64) -> Self {
        Self {
            protocol,
            confirmations: Self::DEFAULT_CONFIRMATIONS,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            max_block_range: Self::DEFAULT_MAX_BLOCK_RANGE,
            start_block,
        }
    }
}
