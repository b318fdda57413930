//! Extractors: the arguments of a job handler.
//!
//! Each handler argument implements [`FromJobCall`]; the router builds them from the [`JobCall`] and
//! the router state before the handler runs. An extractor that fails ends the call with its
//! [`JobError`] (usually [`JobError::BadInput`]) and the handler never runs. Write your own extractor
//! to validate inputs in one place (see the echo blueprint).

use alloy_primitives::Address;
use bytes::Bytes;
use vouch_primitives::{CallId, ServiceId};

use crate::{JobCall, JobError};

/// Builds a handler argument from a call and the router state `S`.
///
/// Synchronous on purpose: the inputs are already in memory, and a handler that needs to do async
/// work does it in its body.
pub trait FromJobCall<S>: Sized {
    /// Extracts `Self`, or rejects the call.
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError>;
}

/// The whole call.
impl<S> FromJobCall<S> for JobCall {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(call.clone())
    }
}

/// The service the call belongs to.
impl<S> FromJobCall<S> for ServiceId {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(call.service_id)
    }
}

/// The call's id.
impl<S> FromJobCall<S> for CallId {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(call.call_id)
    }
}

/// The payer of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub Address);

impl<S> FromJobCall<S> for Caller {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(Self(call.caller))
    }
}

/// The raw inputs, unparsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs(pub Bytes);

impl<S> FromJobCall<S> for Inputs {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(Self(call.inputs.clone()))
    }
}

/// The index of the job being run (useful when one handler serves several jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobIndex(pub u8);

impl<S> FromJobCall<S> for JobIndex {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        Ok(Self(call.job_index))
    }
}

/// The router state, given with [`Router::with_state`](crate::Router::with_state); like axum's
/// `State`. The state is cloned for each call, so keep it cheap to clone (an `Arc` inside).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context<S>(pub S);

impl<S: Clone> FromJobCall<S> for Context<S> {
    fn from_job_call(_call: &JobCall, state: &S) -> Result<Self, JobError> {
        Ok(Self(state.clone()))
    }
}

/// `Some` if the inner extractor accepts the call, `None` if it rejects it.
impl<S, T: FromJobCall<S>> FromJobCall<S> for Option<T> {
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError> {
        Ok(T::from_job_call(call, state).ok())
    }
}

/// The inner extractor's result, for handlers that want to see the rejection themselves.
impl<S, T: FromJobCall<S>> FromJobCall<S> for Result<T, JobError> {
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError> {
        Ok(T::from_job_call(call, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn call() -> JobCall {
        JobCall::new(ServiceId(7), CallId::from(42), 3, address!("0x00000000000000000000000000000000000000aa"), "hi")
    }

    #[test]
    fn extracts_every_field_of_the_call() -> Result<(), JobError> {
        let call = call();
        assert_eq!(ServiceId::from_job_call(&call, &())?, ServiceId(7));
        assert_eq!(CallId::from_job_call(&call, &())?, CallId::from(42));
        assert_eq!(JobIndex::from_job_call(&call, &())?, JobIndex(3));
        assert_eq!(Caller::from_job_call(&call, &())?, Caller(call.caller));
        assert_eq!(Inputs::from_job_call(&call, &())?, Inputs(Bytes::from_static(b"hi")));
        assert_eq!(JobCall::from_job_call(&call, &())?, call);
        assert_eq!(Context::from_job_call(&call, &5u32)?, Context(5u32));
        Ok(())
    }

    #[test]
    fn optional_extractors_swallow_rejections() -> Result<(), JobError> {
        let call = call(); // inputs "hi" are not JSON
        let parsed = Option::<crate::Json<u32>>::from_job_call(&call, &())?;
        assert!(parsed.is_none());
        let parsed = Result::<crate::Json<u32>, JobError>::from_job_call(&call, &())?;
        assert!(matches!(parsed, Err(JobError::BadInput(_))));
        Ok(())
    }
}
