//! [`Handler`]: an async function whose arguments are extractors, and the service that runs it.

use std::{
    any::Any,
    future::Future,
    marker::PhantomData,
    panic::AssertUnwindSafe,
    task::{Context, Poll},
};

use futures_util::{FutureExt, future::BoxFuture};
use tower::Service;

use crate::{FromJobCall, IntoJobOutput, JobCall, JobError, JobOutput};

/// A job handler: implemented for every `async fn` (or closure returning a `Send` future) whose
/// arguments, up to 8, all implement [`FromJobCall<S>`] and whose return type implements
/// [`IntoJobOutput`].
///
/// `T` is a marker (the tuple of argument types) that keeps the impls for different arities apart;
/// you never name it. If a function is not accepted as a handler, check that every argument is an
/// extractor for the router's state type, the return type implements [`IntoJobOutput`], and the
/// future is `Send` (no `Rc` or `std::sync::MutexGuard` held across an `.await`).
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// The future the handler returns (extraction included).
    type Future: Future<Output = Result<JobOutput, JobError>> + Send + 'static;

    /// Runs the handler for `call` with router state `state`.
    fn call(self, call: JobCall, state: S) -> Self::Future;
}

macro_rules! impl_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, Out, S, $($arg,)*> Handler<($($arg,)*), S> for F
        where
            F: FnOnce($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: IntoJobOutput,
            S: Send + 'static,
            $($arg: FromJobCall<S> + Send + 'static,)*
        {
            type Future = BoxFuture<'static, Result<JobOutput, JobError>>;

            #[allow(non_snake_case, unused_variables)]
            fn call(self, call: JobCall, state: S) -> Self::Future {
                Box::pin(async move {
                    $(let $arg = $arg::from_job_call(&call, &state)?;)*
                    self($($arg),*).await.into_job_output()
                })
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);
impl_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A handler bound to its state, as a tower [`Service`]. A panic anywhere in the handler (in the
/// extractors, when it is called, or while its future runs) becomes [`JobError::Panicked`].
pub(crate) struct HandlerService<H, T, S> {
    handler: H,
    state: S,
    _args: PhantomData<fn() -> T>,
}

impl<H, T, S> HandlerService<H, T, S> {
    pub(crate) fn new(handler: H, state: S) -> Self {
        Self { handler, state, _args: PhantomData }
    }
}

impl<H: Clone, T, S: Clone> Clone for HandlerService<H, T, S> {
    fn clone(&self) -> Self {
        Self::new(self.handler.clone(), self.state.clone())
    }
}

impl<H, T, S> Service<JobCall> for HandlerService<H, T, S>
where
    H: Handler<T, S>,
    S: Clone + Send + 'static,
{
    type Response = JobOutput;
    type Error = JobError;
    type Future = BoxFuture<'static, Result<JobOutput, JobError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: JobCall) -> Self::Future {
        let handler = self.handler.clone();
        let state = self.state.clone();
        // `handler.call` runs inside the future, so a panic in a hand-written `Handler::call` is
        // caught as well as one in the handler's body.
        catch_panics(async move { handler.call(call, state).await })
    }
}

/// Runs `future`, turning a panic into [`JobError::Panicked`].
///
/// `AssertUnwindSafe` is sound here: a panicking job's future is dropped, and the only state it
/// shares with later calls is the router state, which a handler must keep consistent under
/// cancellation anyway (a timeout drops futures at any `.await` too).
pub(crate) fn catch_panics<F, R>(future: F) -> BoxFuture<'static, Result<R, JobError>>
where
    F: Future<Output = Result<R, JobError>> + Send + 'static,
{
    Box::pin(
        AssertUnwindSafe(future)
            .catch_unwind()
            .map(|outcome| outcome.unwrap_or_else(|payload| Err(JobError::Panicked(panic_message(&*payload))))),
    )
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "the handler panicked with a value that is not a string".to_owned()
    }
}
