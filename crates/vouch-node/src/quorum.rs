//! [`QuorumTracker`]: signed results of on-chain calls, from this node and its peers, grouped by what was signed,
//! until one group reaches the service's quorum and becomes a certificate.
//!
//! Signatures are verified before they are added (the caller does it against the signer's registered key). Two
//! different results signed by one operator for one call are equivocation: both are kept as evidence.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::Instant,
};

use alloy_primitives::{Address, B256, U256};
use vouch_crypto::Signature;
use vouch_primitives::{CallId, ResultRef, ServiceId};

/// Calls tracked at most; the oldest are dropped beyond it (a peer cannot grow the node's memory without bound).
pub const MAX_TRACKED_CALLS: usize = 50_000;

/// What adding a share did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareOutcome {
    /// A new signature.
    Accepted,
    /// This signer already signed exactly this.
    Duplicate,
    /// This signer signed something else for the same call: both statements are kept.
    Equivocation {
        /// The operator.
        operator: Address,
        /// What it signed first.
        first: ResultRef,
    },
}

/// One call's shares.
#[derive(Debug)]
struct CallShares {
    first_seen: Instant,
    /// (inputs hash, result hash) → slot → signature.
    groups: HashMap<(B256, B256), BTreeMap<usize, Signature>>,
    /// What each slot signed first.
    by_slot: HashMap<usize, ResultRef>,
    /// Evidence of equivocation: (slot, second statement, its signature).
    equivocations: Vec<(usize, ResultRef, Signature)>,
}

/// A group of matching signatures.
#[derive(Debug, Clone)]
pub struct Group {
    /// What they signed.
    pub result: ResultRef,
    /// Bit i = slot i signed.
    pub bitmap: U256,
    /// Signatures in slot order.
    pub signatures: Vec<Signature>,
}

/// Shares of every call in progress.
#[derive(Debug, Default)]
pub struct QuorumTracker {
    calls: Mutex<HashMap<CallId, CallShares>>,
}

impl QuorumTracker {
    /// Adds the (verified) signature of `slot` (operator `operator`) over `result`.
    pub fn add(&self, slot: usize, operator: Address, result: ResultRef, signature: Signature) -> ShareOutcome {
        let Ok(mut calls) = self.calls.lock() else { return ShareOutcome::Duplicate };
        if calls.len() >= MAX_TRACKED_CALLS
            && !calls.contains_key(&result.call_id)
            && let Some(oldest) = calls.iter().min_by_key(|(_, c)| c.first_seen).map(|(k, _)| *k)
        {
            calls.remove(&oldest);
        }
        let entry = calls.entry(result.call_id).or_insert_with(|| CallShares {
            first_seen: Instant::now(),
            groups: HashMap::new(),
            by_slot: HashMap::new(),
            equivocations: Vec::new(),
        });
        if let Some(first) = entry.by_slot.get(&slot).copied() {
            if first == result {
                return ShareOutcome::Duplicate;
            }
            if !entry.equivocations.iter().any(|(s, r, _)| *s == slot && *r == result) {
                entry.equivocations.push((slot, result, signature));
            }
            return ShareOutcome::Equivocation { operator, first };
        }
        entry.by_slot.insert(slot, result);
        entry.groups.entry((result.inputs_hash, result.result_hash)).or_default().insert(slot, signature);
        ShareOutcome::Accepted
    }

    /// Every group of `call`, largest first.
    pub fn groups(&self, call: CallId) -> Vec<Group> {
        let Ok(calls) = self.calls.lock() else { return Vec::new() };
        let Some(shares) = calls.get(&call) else { return Vec::new() };
        let mut groups: Vec<Group> = shares
            .groups
            .iter()
            .filter_map(|((inputs_hash, result_hash), sigs)| {
                let service_id = shares.by_slot.get(sigs.keys().next()?)?.service_id;
                Some(Group {
                    result: ResultRef {
                        service_id,
                        call_id: call,
                        inputs_hash: *inputs_hash,
                        result_hash: *result_hash,
                    },
                    bitmap: sigs.keys().fold(U256::ZERO, |b, s| b | (U256::from(1) << *s)),
                    signatures: sigs.values().copied().collect(),
                })
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.signatures.len()));
        groups
    }

    /// When the call was first seen by this node.
    pub fn first_seen(&self, call: CallId) -> Option<Instant> {
        self.calls.lock().ok()?.get(&call).map(|c| c.first_seen)
    }

    /// Calls in progress, with their service.
    pub fn calls(&self) -> Vec<(CallId, ServiceId)> {
        let Ok(calls) = self.calls.lock() else { return Vec::new() };
        calls.iter().filter_map(|(id, c)| Some((*id, c.by_slot.values().next()?.service_id))).collect()
    }

    /// Forgets a call (settled, refunded or vanished).
    pub fn forget(&self, call: CallId) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(&call);
        }
    }

    /// Equivocation evidence held for `call`: (slot, statement, signature).
    pub fn equivocations(&self, call: CallId) -> Vec<(usize, ResultRef, Signature)> {
        self.calls.lock().ok().and_then(|c| c.get(&call).map(|s| s.equivocations.clone())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_crypto::SecretKey;

    fn r(call: u64, result: u8) -> ResultRef {
        ResultRef {
            service_id: ServiceId(1),
            call_id: CallId(U256::from(call)),
            inputs_hash: B256::repeat_byte(9),
            result_hash: B256::repeat_byte(result),
        }
    }

    #[test]
    fn groups_by_result_and_keeps_equivocation() {
        let sk = SecretKey::from_ikm(&[7u8; 32]).expect("key");
        let sig = sk.sign(&B256::ZERO);
        let t = QuorumTracker::default();
        let a = Address::repeat_byte(1);
        assert_eq!(t.add(0, a, r(1, 1), sig), ShareOutcome::Accepted);
        assert_eq!(t.add(0, a, r(1, 1), sig), ShareOutcome::Duplicate);
        assert_eq!(t.add(1, a, r(1, 1), sig), ShareOutcome::Accepted);
        assert_eq!(t.add(2, a, r(1, 2), sig), ShareOutcome::Accepted);
        assert!(matches!(t.add(2, a, r(1, 1), sig), ShareOutcome::Equivocation { .. }));
        let groups = t.groups(CallId(U256::from(1)));
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].bitmap, U256::from(0b11));
        assert_eq!(groups[0].result.result_hash, B256::repeat_byte(1));
        assert_eq!(t.equivocations(CallId(U256::from(1))).len(), 1);
        t.forget(CallId(U256::from(1)));
        assert!(t.groups(CallId(U256::from(1))).is_empty());
    }
}
