//! Checkers: how an operator of a [`Verification::Checked`](crate::Verification::Checked) job decides whether the
//! output another operator (the executor) claims for a call is right, without running the job itself.
//!
//! A checker is an `async fn` like a job handler — its arguments are extractors ([`Json`](crate::Json),
//! [`Inputs`](crate::Inputs), [`CallId`](crate::CallId), [`Context`](crate::Context), …) — that also takes
//! [`Claimed`], the output proposed for certification, and returns an [`Agreement`] (anything that implements
//! [`IntoAgreement`]). It is routed with [`Router::checker`](crate::Router::checker) and run by the node for
//! `POST /v1/endorsements` (`docs/node-api.md`): on [`Agreement::Agree`] the operator signs the claimed output as its
//! own result. Make it strict (a disagreement costs the caller a certificate, an agreement with a wrong output costs
//! the operator its stake) and cheaper than the job (text generation checks with one teacher-forced forward pass).

use std::{
    fmt::Display,
    future::Future,
    marker::PhantomData,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use tower::Service;

use crate::{Agreement, FromJobCall, JobCall, JobError, Reject, handler::catch_panics};

/// The output proposed for certification, as raw bytes: what a checker checks.
///
/// Present only when the node runs a checker ([`Router::check`](crate::Router::check)); a job handler that extracts
/// it is rejected with [`JobError::BadInput`]. Its size is bounded by the node's request body limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed(pub Bytes);

impl Claimed {
    /// The claimed output's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The claimed output parsed as JSON `T` (no bytes after the value). A claimed output that does not parse is
    /// wrong, so the error is the disagreement to return:
    ///
    /// ```
    /// # use vouch_sdk::{Agreement, Claimed};
    /// async fn check(claimed: Claimed) -> Agreement {
    ///     let n: u64 = match claimed.json() {
    ///         Ok(n) => n,
    ///         Err(disagreement) => return disagreement,
    ///     };
    ///     if n % 2 == 0 { Agreement::Agree } else { Agreement::disagree(format!("{n} is odd")) }
    /// }
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Agreement> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.0);
        let value = T::deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|error| Agreement::disagree(format!("the claimed output is not the expected JSON: {error}")))?;
        Ok(value)
    }
}

impl<S> FromJobCall<S> for Claimed {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        call.claimed.clone().map(Self).ok_or_else(|| {
            JobError::BadInput(
                "no claimed output: `Claimed` is extracted by checkers (Router::checker), not by job handlers".into(),
            )
        })
    }
}

/// Turns a checker's return value into its decision, or a job error (the checker could not decide).
///
/// Implemented for [`Agreement`], `Result<T, E: Display>` (an `Err` becomes [`JobError::Handler`] with its text) and
/// `Result<T, Reject>` (the [`JobError`] inside passes through unchanged), as [`IntoJobOutput`](crate::IntoJobOutput)
/// is for job handlers. A job error is not a disagreement: the node answers it as a failed job, and signs nothing.
pub trait IntoAgreement {
    /// The decision, or why there is none.
    fn into_agreement(self) -> Result<Agreement, JobError>;
}

impl IntoAgreement for Agreement {
    fn into_agreement(self) -> Result<Agreement, JobError> {
        Ok(self)
    }
}

impl<T: IntoAgreement, E: Display> IntoAgreement for Result<T, E> {
    fn into_agreement(self) -> Result<Agreement, JobError> {
        match self {
            Ok(value) => value.into_agreement(),
            Err(error) => Err(JobError::Handler(error.to_string())),
        }
    }
}

impl<T: IntoAgreement> IntoAgreement for Result<T, Reject> {
    fn into_agreement(self) -> Result<Agreement, JobError> {
        self.map_err(|Reject(error)| error)?.into_agreement()
    }
}

/// A checker: implemented for every `async fn` (or closure returning a `Send` future) whose arguments, up to 8, all
/// implement [`FromJobCall<S>`] (usually including [`Claimed`]) and whose return type implements [`IntoAgreement`].
///
/// The twin of [`Handler`](crate::Handler); `T` is the same kind of marker, never named.
pub trait Checker<T, S>: Clone + Send + Sync + Sized + 'static {
    /// The future the checker returns (extraction included).
    type Future: Future<Output = Result<Agreement, JobError>> + Send + 'static;

    /// Runs the checker for `call` (whose [`JobCall::claimed`] holds the claimed output) with router state `state`.
    fn call(self, call: JobCall, state: S) -> Self::Future;
}

macro_rules! impl_checker {
    ($($arg:ident),*) => {
        impl<F, Fut, Out, S, $($arg,)*> Checker<($($arg,)*), S> for F
        where
            F: FnOnce($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: IntoAgreement,
            S: Send + 'static,
            $($arg: FromJobCall<S> + Send + 'static,)*
        {
            type Future = BoxFuture<'static, Result<Agreement, JobError>>;

            #[allow(non_snake_case, unused_variables)]
            fn call(self, call: JobCall, state: S) -> Self::Future {
                Box::pin(async move {
                    $(let $arg = $arg::from_job_call(&call, &state)?;)*
                    self($($arg),*).await.into_agreement()
                })
            }
        }
    };
}

impl_checker!();
impl_checker!(T1);
impl_checker!(T1, T2);
impl_checker!(T1, T2, T3);
impl_checker!(T1, T2, T3, T4);
impl_checker!(T1, T2, T3, T4, T5);
impl_checker!(T1, T2, T3, T4, T5, T6);
impl_checker!(T1, T2, T3, T4, T5, T6, T7);
impl_checker!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A checker bound to its state, as a tower [`Service`]; a panic becomes [`JobError::Panicked`].
pub(crate) struct CheckerService<C, T, S> {
    checker: C,
    state: S,
    _args: PhantomData<fn() -> T>,
}

impl<C, T, S> CheckerService<C, T, S> {
    pub(crate) fn new(checker: C, state: S) -> Self {
        Self { checker, state, _args: PhantomData }
    }
}

impl<C: Clone, T, S: Clone> Clone for CheckerService<C, T, S> {
    fn clone(&self) -> Self {
        Self::new(self.checker.clone(), self.state.clone())
    }
}

impl<C, T, S> Service<JobCall> for CheckerService<C, T, S>
where
    C: Checker<T, S>,
    S: Clone + Send + 'static,
{
    type Response = Agreement;
    type Error = JobError;
    type Future = BoxFuture<'static, Result<Agreement, JobError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: JobCall) -> Self::Future {
        let checker = self.checker.clone();
        let state = self.state.clone();
        catch_panics(async move { checker.call(call, state).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;
    use vouch_primitives::{CallId, ServiceId};

    fn call() -> JobCall {
        JobCall::new(ServiceId(1), CallId::from(2), 0, Address::ZERO, "{}")
    }

    #[test]
    fn claimed_is_extracted_only_when_present() {
        let error = Claimed::from_job_call(&call(), &()).err();
        assert!(matches!(&error, Some(JobError::BadInput(m)) if m.contains("Router::checker")), "{error:?}");
        let claimed = Claimed::from_job_call(&call().with_claimed("[1,2]"), &());
        assert_eq!(claimed.as_ref().map(|c| c.bytes().clone()), Ok(Bytes::from_static(b"[1,2]")));
    }

    #[test]
    fn claimed_json_disagrees_with_unparsable_outputs() {
        let claimed = Claimed(Bytes::from_static(b"[1,2]"));
        assert_eq!(claimed.json::<Vec<u8>>(), Ok(vec![1, 2]));
        let Err(Agreement::Disagree { reason }) = claimed.json::<String>() else { panic!("expected a disagreement") };
        assert!(reason.contains("not the expected JSON"), "{reason}");
        assert!(Claimed(Bytes::from_static(b"[1] 2")).json::<Vec<u8>>().is_err(), "trailing bytes");
    }

    #[test]
    fn return_values_become_agreements_or_job_errors() {
        assert_eq!(Agreement::Agree.into_agreement(), Ok(Agreement::Agree));
        let failed: Result<Agreement, &str> = Err("model not loaded");
        assert_eq!(failed.into_agreement(), Err(JobError::Handler("model not loaded".into())));
        let rejected: Result<Agreement, Reject> = Err(Reject(JobError::BadInput("prompt too long".into())));
        assert_eq!(rejected.into_agreement(), Err(JobError::BadInput("prompt too long".into())));
        let fine: Result<Agreement, Reject> = Ok(Agreement::disagree("token 3"));
        assert_eq!(fine.into_agreement(), Ok(Agreement::disagree("token 3")));
    }
}
