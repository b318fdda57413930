//! The unit of work: one job invocation ([`JobCall`]) and its result ([`JobOutput`]).

use alloy_primitives::{Address, B256, keccak256};
use bytes::Bytes;
use vouch_primitives::{CallId, ServiceId};

/// One job invocation, as the node hands it to the [`Router`](crate::Router).
///
/// The call was opened on-chain (or by a settled x402 payment); operators sign over
/// `(service_id, call_id, inputs_hash, result_hash)`, so everything a handler may depend on is here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCall {
    /// The service (blueprint instance) the call belongs to.
    pub service_id: ServiceId,
    /// The call's id, unique within the protocol deployment.
    pub call_id: CallId,
    /// Which job of the blueprint to run.
    pub job_index: u8,
    /// Who pays for the call.
    pub caller: Address,
    /// Raw inputs, exactly the bytes whose hash is committed on-chain.
    pub inputs: Bytes,
    /// The output another operator proposes for certification, when the node runs the job's checker
    /// ([`Router::check`](crate::Router::check), a [`Verification::Checked`](crate::Verification::Checked) job)
    /// rather than the job itself; `None` otherwise. Checkers read it with [`Claimed`](crate::Claimed).
    pub claimed: Option<Bytes>,
}

impl JobCall {
    /// A call of job `job_index` of `service_id` with raw `inputs`.
    pub fn new(
        service_id: ServiceId,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: impl Into<Bytes>,
    ) -> Self {
        Self { service_id, call_id, job_index, caller, inputs: inputs.into(), claimed: None }
    }

    /// The same call with `claimed`, the output proposed for certification, for a checker.
    #[must_use]
    pub fn with_claimed(mut self, claimed: impl Into<Bytes>) -> Self {
        self.claimed = Some(claimed.into());
        self
    }

    /// `keccak256(inputs)`, the inputs hash that certificates and the call record commit to.
    pub fn inputs_hash(&self) -> B256 {
        keccak256(&self.inputs)
    }
}

/// The result of a job: the bytes operators sign (through their hash) and return to the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobOutput {
    /// The result bytes.
    pub bytes: Bytes,
}

impl JobOutput {
    /// An output holding `bytes`.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self { bytes: bytes.into() }
    }

    /// `keccak256(bytes)`, the result hash operators sign.
    pub fn result_hash(&self) -> B256 {
        keccak256(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keccak256_of_the_bytes() {
        let call = JobCall::new(ServiceId(1), CallId::from(2), 0, Address::ZERO, &b"abc"[..]);
        assert_eq!(call.inputs_hash(), keccak256(b"abc"));
        let out = JobOutput::new(&b""[..]);
        // keccak256 of the empty string, a well-known constant.
        assert_eq!(out.result_hash().to_string(), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    }
}
