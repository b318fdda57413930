//! The operator node's HTTP API bodies (version 1): what a gateway sends an operator (`POST /v1/jobs`,
//! `POST /v1/batches`), what the operator answers, and what operators send each other (`POST /v1/results`).
//! Specified in `docs/node-api.md`.
//!
//! Unknown fields are rejected everywhere: these messages decide what an operator signs.

use alloy_primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

pub use crate::x402::TransferAuthorization;
use crate::{BatchEntry, CallId, CommitmentRef, ResultRef, ServiceId};

/// Version of every body in this module.
pub const WIRE_VERSION: u32 = 1;

/// Most entries one [`BatchSignRequest`] may hold (below the contract's `MAX_BATCH_SIZE` of 1,024).
pub const MAX_BATCH_SIGN_ENTRIES: usize = 256;

/// How the operators of a job come to sign one result (`docs/design/tolerant-verification.md`). A blueprint declares
/// it per job in its metadata (`jobs[i].verification`); a gateway orchestrates the call accordingly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verification {
    /// Every operator runs the job and signs its own result (`POST /v1/jobs`); a certificate needs equal result
    /// hashes. For deterministic jobs.
    #[default]
    Exact,
    /// Commit, then sign a canonical output: every operator runs the job and signs a commitment to its own output
    /// (`POST /v1/commitments`); the aggregator proposes one committed output, and each operator signs it as its
    /// result (`POST /v1/endorsements`) only if it lies within the job's tolerance of its own. For floating-point
    /// outputs such as embeddings.
    Tolerant,
    /// One executor runs the job (`POST /v1/jobs`); every other operator checks the claimed output with the job's
    /// cheaper checker (`POST /v1/endorsements`) and signs the same result if it passes. For text generation
    /// (teacher-forced re-prefill).
    Checked,
}

/// Why the operator may do the work: the call is paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum PaymentProof {
    /// The call is open on chain (`callJob`): its id, service, job and inputs hash are checked there.
    OnChain,
    /// An x402 payment not yet on chain: the call id must be `paid_call_id(service, job, from, nonce)`.
    X402 {
        /// The authorization.
        authorization: TransferAuthorization,
        /// Its 65-byte signature.
        signature: Bytes,
    },
}

/// `POST /v1/jobs`: run a job for a paid call and sign its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobRequest {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The service.
    pub service_id: ServiceId,
    /// The call.
    pub call_id: CallId,
    /// The job of the service's blueprint.
    pub job_index: u8,
    /// The inputs (`inputsHash = keccak256(inputs)`), hex.
    pub inputs: Bytes,
    /// Proof that the call is paid.
    pub payment: PaymentProof,
}

/// The answer to a [`JobRequest`], and the share operators exchange (`POST /v1/results`): one operator's signature
/// over `result_digest(binding, result)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedResult {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The signing operator.
    pub operator: Address,
    /// What it signed.
    pub result: ResultRef,
    /// The job's output (its `keccak256` is the result hash). Absent in shares between operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Bytes>,
    /// 96-byte compressed BLS signature (G2).
    pub signature: Bytes,
}

/// The answer to `POST /v1/commitments` (a [`JobRequest`] for a [`Verification::Tolerant`] job): the operator's own
/// output and its signature over `commitment_digest(binding, commitment)`. The guard records one commitment per call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedCommitment {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The committing operator.
    pub operator: Address,
    /// What it committed to.
    pub commitment: CommitmentRef,
    /// The operator's output (its `keccak256` is the commitment's output hash).
    pub output: Bytes,
    /// 96-byte compressed BLS signature (G2).
    pub signature: Bytes,
}

/// `POST /v1/endorsements`: sign `output` — another operator's output for the same paid call — as this operator's
/// result, if it agrees with it: within the job's tolerance of this operator's own commitment
/// ([`Verification::Tolerant`]) or passing the job's checker ([`Verification::Checked`]). Answered with a
/// [`SignedResult`] over `keccak256(output)`, or `409 disagree` with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndorseRequest {
    /// The paid call, exactly as for `POST /v1/jobs` (the same payment checks apply).
    pub request: JobRequest,
    /// The output proposed for certification.
    pub output: Bytes,
}

/// `POST /v1/batches`: sign one batch certificate over calls this operator already signed one by one.
///
/// The operator signs `batch_digest(binding, service_id, entries)` (leaves `batch_leaf(entry)` in the given order) only
/// if every entry is recorded in its signing guard with exactly this inputs hash and result hash: a batch signature
/// restates what the operator signed, never something new.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSignRequest {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The service every entry belongs to.
    pub service_id: ServiceId,
    /// The calls, 1 to [`MAX_BATCH_SIGN_ENTRIES`], no call twice, in leaf order.
    pub entries: Vec<BatchEntry>,
}

/// The answer to a [`BatchSignRequest`]: one operator's signature over the batch digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSignature {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The signing operator.
    pub operator: Address,
    /// The service.
    pub service_id: ServiceId,
    /// `batch_root` of the entries' leaves.
    pub root: B256,
    /// Number of entries.
    pub count: u32,
    /// 96-byte compressed BLS signature (G2) over `batch_digest(binding, service_id, entries)`.
    pub signature: Bytes,
}

/// An error answer of the node API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`unknown_service`, `call_not_paid`, …).
    pub code: String,
    /// What to fix, in one sentence.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;

    #[test]
    fn authorization_reads_the_official_clients_shape() {
        let json = r#"{"from":"0x00000000000000000000000000000000000000aa","to":"0x00000000000000000000000000000000000000bb","value":"10000","validAfter":"0","validBefore":"1740000000","nonce":"0x0101010101010101010101010101010101010101010101010101010101010101"}"#;
        let a: TransferAuthorization = serde_json::from_str(json).expect("parses");
        assert_eq!(a.value, U256::from(10_000));
        assert_eq!(a.valid_before, U256::from(1_740_000_000u64));
        let back = serde_json::to_string(&a).expect("serializes");
        assert!(back.contains(r#""value":"10000""#), "{back}");
        assert!(serde_json::from_str::<TransferAuthorization>(&json.replace(r#""0""#, r#""-1""#)).is_err());
        assert!(serde_json::from_str::<TransferAuthorization>(&json.replace("}", r#","extra":1}"#)).is_err());
    }

    #[test]
    fn job_request_round_trips_and_rejects_unknown_fields() {
        let req = JobRequest {
            version: WIRE_VERSION,
            service_id: ServiceId(1),
            call_id: CallId(U256::from(7)),
            job_index: 0,
            inputs: Bytes::from_static(b"{}"),
            payment: PaymentProof::OnChain,
        };
        let json = serde_json::to_string(&req).expect("serializes");
        assert_eq!(serde_json::from_str::<JobRequest>(&json).expect("parses"), req);
        let extra = json.replacen('{', r#"{"surprise":true,"#, 1);
        assert!(serde_json::from_str::<JobRequest>(&extra).is_err());
    }

    #[test]
    fn batch_bodies_are_camel_case_and_reject_unknown_fields() {
        let req = BatchSignRequest {
            version: WIRE_VERSION,
            service_id: ServiceId(3),
            entries: vec![BatchEntry {
                call_id: CallId(U256::from(9)),
                inputs_hash: B256::repeat_byte(1),
                result_hash: B256::repeat_byte(2),
            }],
        };
        let json = serde_json::to_string(&req).expect("serializes");
        assert!(json.contains(r#""serviceId":3"#) && json.contains(r#""inputsHash""#), "{json}");
        assert_eq!(serde_json::from_str::<BatchSignRequest>(&json).expect("parses"), req);
        assert!(serde_json::from_str::<BatchSignRequest>(&json.replacen('{', r#"{"x":1,"#, 1)).is_err());

        let sig = BatchSignature {
            version: WIRE_VERSION,
            operator: Address::repeat_byte(7),
            service_id: ServiceId(3),
            root: B256::repeat_byte(4),
            count: 1,
            signature: Bytes::from(vec![0u8; 96]),
        };
        let json = serde_json::to_string(&sig).expect("serializes");
        assert!(json.contains(r#""serviceId":3"#) && json.contains(r#""count":1"#), "{json}");
        assert_eq!(serde_json::from_str::<BatchSignature>(&json).expect("parses"), sig);
        assert!(serde_json::from_str::<BatchSignature>(&json.replacen('{', r#"{"x":1,"#, 1)).is_err());
    }
}
