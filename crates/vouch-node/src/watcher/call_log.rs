//! Calls from protocol logs: each `CallOpened` paired with the `CallInputs` of the same call in the same transaction.

use std::collections::HashMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    rpc::types::Log,
    sol_types::SolEvent,
};
use vouch_contracts::VouchProtocol::{CallInputs, CallOpened};
use vouch_primitives::{CallId, ServiceId};

use super::{CallStatus, ChainCall, WatcherError, state_store::FoundCall};

/// The topics the watcher asks `eth_getLogs` for.
pub(crate) fn call_event_topics() -> Vec<B256> {
    vec![CallOpened::SIGNATURE_HASH, CallInputs::SIGNATURE_HASH]
}

/// Where a log sits on the chain.
struct Position {
    block_number: u64,
    block_hash: B256,
    tx_hash: B256,
    log_index: u64,
}

/// The calls opened by `logs` (the protocol's logs of blocks `from..=to`), in chain order.
///
/// A `CallOpened` whose transaction also emitted `CallInputs` for the same call (`callJob`, `callJobs`) is
/// [`CallStatus::Pending`] with its inputs; one without (an x402 `openPaidCall`) is [`CallStatus::InputsOffChain`].
/// Inputs that do not hash to the event's `inputsHash` are never handed out: the call is treated as off-chain too.
/// Logs of other contracts or events, and logs flagged `removed`, are ignored.
pub(crate) fn calls_from_logs(
    protocol: Address,
    logs: &[Log],
    from: u64,
    to: u64,
) -> Result<Vec<FoundCall>, WatcherError> {
    let mut opened = Vec::new();
    let mut inputs: HashMap<(B256, U256), Bytes> = HashMap::new();
    for log in logs.iter().filter(|log| !log.removed && log.address() == protocol) {
        let Some(&topic) = log.topic0() else { continue };
        if topic != CallOpened::SIGNATURE_HASH && topic != CallInputs::SIGNATURE_HASH {
            continue;
        }
        let missing = |missing| WatcherError::IncompleteLog { from, to, missing };
        let position = Position {
            block_number: log.block_number.ok_or_else(|| missing("block number"))?,
            block_hash: log.block_hash.ok_or_else(|| missing("block hash"))?,
            tx_hash: log.transaction_hash.ok_or_else(|| missing("transaction hash"))?,
            log_index: log.log_index.ok_or_else(|| missing("log index"))?,
        };
        let decode_error = |event| {
            move |source| WatcherError::Decode {
                event,
                tx_hash: position.tx_hash,
                log_index: position.log_index,
                source: Box::new(source),
            }
        };
        if topic == CallOpened::SIGNATURE_HASH {
            let event = CallOpened::decode_log_data(log.data()).map_err(decode_error("CallOpened"))?;
            opened.push((position, event));
        } else {
            let event = CallInputs::decode_log_data(log.data()).map_err(decode_error("CallInputs"))?;
            inputs.insert((position.tx_hash, event.callId), event.inputs);
        }
    }
    opened.sort_by_key(|(position, _)| (position.block_number, position.log_index));
    Ok(opened
        .into_iter()
        .map(|(position, event)| {
            let inputs = inputs.remove(&(position.tx_hash, event.callId)).filter(|inputs| {
                let matches = keccak256(inputs) == event.inputsHash;
                if !matches {
                    tracing::error!(
                        call = %CallId(event.callId),
                        tx = %position.tx_hash,
                        "CallInputs do not hash to the call's inputsHash; the call is not executed from the chain"
                    );
                }
                matches
            });
            FoundCall {
                call: ChainCall {
                    call_id: CallId(event.callId),
                    service_id: ServiceId(event.serviceId),
                    job_index: event.jobIndex,
                    payer: event.payer,
                    payment: event.payment,
                    // The contract stores it as a uint64.
                    deadline: u64::try_from(event.deadline).unwrap_or(u64::MAX),
                    inputs_hash: event.inputsHash,
                    status: if inputs.is_some() { CallStatus::Pending } else { CallStatus::InputsOffChain },
                    inputs,
                    block_number: position.block_number,
                    block_hash: position.block_hash,
                },
                tx_hash: position.tx_hash,
                log_index: position.log_index,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::LogData;

    use super::*;

    const PROTOCOL: Address = Address::repeat_byte(0x42);

    fn log(event: &impl SolEvent, block_number: u64, tx: u8, log_index: u64) -> Log {
        Log {
            inner: alloy::primitives::Log { address: PROTOCOL, data: event.encode_log_data() },
            block_hash: Some(B256::with_last_byte(block_number as u8)),
            block_number: Some(block_number),
            block_timestamp: None,
            transaction_hash: Some(B256::repeat_byte(tx)),
            transaction_index: Some(0),
            log_index: Some(log_index),
            removed: false,
        }
    }

    fn opened(id: u64, inputs: &[u8]) -> CallOpened {
        CallOpened {
            callId: U256::from(id),
            serviceId: 3,
            jobIndex: 1,
            payer: Address::repeat_byte(0xaa),
            payment: U256::from(50_000),
            deadline: U256::from(1_700_000_600u64),
            inputsHash: keccak256(inputs),
        }
    }

    fn inputs(id: u64, inputs: &[u8]) -> CallInputs {
        CallInputs { callId: U256::from(id), inputs: Bytes::copy_from_slice(inputs) }
    }

    #[test]
    fn pairs_inputs_by_call_and_transaction() {
        let logs = [
            log(&opened(2, b"two"), 7, 2, 0),
            log(&inputs(2, b"two"), 7, 2, 1),
            log(&opened(1, b"one"), 5, 1, 3),
            log(&inputs(1, b"one"), 5, 1, 4),
            // x402: CallOpened alone; a CallInputs of the same id in another transaction does not count.
            log(&opened(9, b"paid"), 8, 3, 0),
            log(&inputs(9, b"paid"), 8, 4, 1),
        ];
        let calls = calls_from_logs(PROTOCOL, &logs, 1, 8).unwrap();
        let summary: Vec<_> =
            calls.iter().map(|c| (c.call.call_id, c.call.status, c.call.inputs.clone(), c.call.block_number)).collect();
        assert_eq!(
            summary,
            [
                (CallId::from(1), CallStatus::Pending, Some(Bytes::from_static(b"one")), 5),
                (CallId::from(2), CallStatus::Pending, Some(Bytes::from_static(b"two")), 7),
                (CallId::from(9), CallStatus::InputsOffChain, None, 8),
            ]
        );
        let first = &calls[0].call;
        assert_eq!((first.service_id, first.job_index, first.deadline), (ServiceId(3), 1, 1_700_000_600));
        assert_eq!((first.payment, first.inputs_hash), (U256::from(50_000), keccak256(b"one")));
        assert_eq!(first.block_hash, B256::with_last_byte(5));
    }

    #[test]
    fn inputs_that_do_not_match_the_hash_are_not_used() {
        let logs = [log(&opened(1, b"one"), 5, 1, 0), log(&inputs(1, b"forged"), 5, 1, 1)];
        let calls = calls_from_logs(PROTOCOL, &logs, 5, 5).unwrap();
        assert_eq!((calls[0].call.status, calls[0].call.inputs.clone()), (CallStatus::InputsOffChain, None));
    }

    #[test]
    fn ignores_other_contracts_and_removed_logs_and_rejects_pending_ones() {
        let mut other = log(&opened(1, b"one"), 5, 1, 0);
        other.inner.address = Address::ZERO;
        let mut removed = log(&opened(2, b"two"), 5, 1, 1);
        removed.removed = true;
        let unrelated = Log {
            inner: alloy::primitives::Log {
                address: PROTOCOL,
                data: LogData::new_unchecked(vec![B256::repeat_byte(1)], Bytes::new()),
            },
            ..log(&opened(3, b""), 5, 1, 2)
        };
        assert!(calls_from_logs(PROTOCOL, &[other, removed, unrelated], 5, 5).unwrap().is_empty());

        let mut pending = log(&opened(1, b"one"), 5, 1, 0);
        pending.block_hash = None;
        assert!(matches!(
            calls_from_logs(PROTOCOL, &[pending], 5, 5),
            Err(WatcherError::IncompleteLog { missing: "block hash", .. })
        ));
    }
}
