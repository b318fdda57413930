//! [`SettlementStore`]: the durable queue the batcher reads and writes, and [`MemoryStore`], an in-memory one.

use std::sync::{Mutex, MutexGuard, PoisonError};

use alloy_primitives::{B256, U256};
use vouch_primitives::CallId;

use super::{PendingSettlement, SettlementError};

/// Durable state the batcher reads and writes. The gateway's SQLite store implements it; tests use
/// [`MemoryStore`].
///
/// The methods are called from tokio's blocking pool, so an implementation may block (SQLite). Marking must be
/// idempotent: after a crash the batcher may mark a call again.
pub trait SettlementStore: Send + Sync + 'static {
    /// Up to `limit` calls waiting for settlement, oldest first.
    fn unsettled(&self, limit: usize) -> Result<Vec<PendingSettlement>, SettlementError>;
    /// `calls` are settled: paid and certified by `tx`, recorded as paid batch `batch_id` (0 when unknown: the
    /// batch had been settled before and the resubmission collected nothing).
    fn mark_settled(&self, calls: &[CallId], tx: B256, batch_id: U256) -> Result<(), SettlementError>;
    /// `call` can never be settled by the batcher: its authorization expired, was used elsewhere, or the payer's
    /// balance is gone (`reason` says which). The payer is never charged for it.
    fn mark_unpayable(&self, call: CallId, reason: &str) -> Result<(), SettlementError>;
}

/// Where a call of a [`MemoryStore`] stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettlementState {
    /// Waiting for settlement.
    Unsettled,
    /// Settled by transaction `tx` in paid batch `batch_id` (0 = unknown).
    Settled {
        /// The transaction.
        tx: B256,
        /// The paid batch.
        batch_id: U256,
    },
    /// Never to be charged.
    Unpayable {
        /// Why.
        reason: String,
    },
}

/// A [`SettlementStore`] in memory (a `Mutex<Vec<…>>` in insertion order): for tests and examples, not for a
/// gateway that must survive restarts. Calls are returned oldest (first inserted) first.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<Vec<(PendingSettlement, SettlementState)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn rows(&self) -> MutexGuard<'_, Vec<(PendingSettlement, SettlementState)>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `call` for settlement (as the newest). A call already in the store is replaced and queued again,
    /// whatever its state (tests use this to resubmit a settled batch).
    pub fn insert(&self, call: PendingSettlement) {
        let mut rows = self.rows();
        rows.retain(|(p, _)| p.call_id != call.call_id);
        rows.push((call, SettlementState::Unsettled));
    }

    /// The state of `call`, if the store has it.
    pub fn state(&self, call: CallId) -> Option<SettlementState> {
        self.rows().iter().find(|(p, _)| p.call_id == call).map(|(_, s)| s.clone())
    }

    /// Number of calls waiting for settlement.
    pub fn unsettled_count(&self) -> usize {
        self.rows().iter().filter(|(_, s)| *s == SettlementState::Unsettled).count()
    }
}

impl SettlementStore for MemoryStore {
    fn unsettled(&self, limit: usize) -> Result<Vec<PendingSettlement>, SettlementError> {
        Ok(self
            .rows()
            .iter()
            .filter(|(_, s)| *s == SettlementState::Unsettled)
            .take(limit)
            .map(|(p, _)| p.clone())
            .collect())
    }

    fn mark_settled(&self, calls: &[CallId], tx: B256, batch_id: U256) -> Result<(), SettlementError> {
        let mut rows = self.rows();
        for (p, state) in rows.iter_mut() {
            if calls.contains(&p.call_id) {
                *state = SettlementState::Settled { tx, batch_id };
            }
        }
        Ok(())
    }

    fn mark_unpayable(&self, call: CallId, reason: &str) -> Result<(), SettlementError> {
        let mut rows = self.rows();
        for (p, state) in rows.iter_mut() {
            if p.call_id == call {
                *state = SettlementState::Unpayable { reason: reason.to_owned() };
            }
        }
        Ok(())
    }
}
