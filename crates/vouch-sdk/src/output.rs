//! [`IntoJobOutput`]: what a handler may return.

use std::fmt::Display;

use bytes::Bytes;

use crate::{JobError, JobOutput};

/// Turns a handler's return value into the job's output bytes, or a job error.
///
/// Implemented for [`Json<T>`](crate::Json), [`Bytes`], `Vec<u8>`, `String`, `&'static str`,
/// [`JobOutput`], `Result<T, E: Display>` (an `Err` becomes [`JobError::Handler`] with its text) and
/// `Result<T, Reject>` (the [`JobError`] inside passes through unchanged).
pub trait IntoJobOutput {
    /// The output, or why there is none.
    fn into_job_output(self) -> Result<JobOutput, JobError>;
}

impl IntoJobOutput for JobOutput {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        Ok(self)
    }
}

impl IntoJobOutput for Bytes {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        Ok(JobOutput::new(self))
    }
}

impl IntoJobOutput for Vec<u8> {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        Ok(JobOutput::new(self))
    }
}

impl IntoJobOutput for String {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        Ok(JobOutput::new(self))
    }
}

impl IntoJobOutput for &'static str {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        Ok(JobOutput::new(self))
    }
}

impl<T: IntoJobOutput, E: Display> IntoJobOutput for Result<T, E> {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        match self {
            Ok(value) => value.into_job_output(),
            Err(error) => Err(JobError::Handler(error.to_string())),
        }
    }
}

/// A handler error that keeps its [`JobError`] variant.
///
/// `Result<T, E>` turns any `Err` into [`JobError::Handler`]. A handler that finds, after some work,
/// that the inputs are unusable (say a prompt longer than the model's context) returns
/// `Result<T, Reject>` with `Err(Reject(JobError::BadInput(…)))`, and the caller gets a `bad_input`
/// answer instead of a `handler_error`. Deliberately not `Display`, so the two impls do not overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub JobError);

impl From<JobError> for Reject {
    fn from(error: JobError) -> Self {
        Self(error)
    }
}

impl<T: IntoJobOutput> IntoJobOutput for Result<T, Reject> {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        self.map_err(|Reject(error)| error)?.into_job_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_become_their_bytes() -> Result<(), JobError> {
        assert_eq!(&String::from("a").into_job_output()?.bytes[..], b"a");
        assert_eq!(&vec![1u8, 2].into_job_output()?.bytes[..], &[1, 2]);
        assert_eq!(&Bytes::from_static(b"b").into_job_output()?.bytes[..], b"b");
        assert_eq!(&"c".into_job_output()?.bytes[..], b"c");
        assert_eq!(JobOutput::new("d").into_job_output()?, JobOutput::new("d"));
        Ok(())
    }

    #[test]
    fn errors_become_handler_errors_unless_rejected() {
        let failed: Result<String, &str> = Err("no luck");
        assert_eq!(failed.into_job_output(), Err(JobError::Handler("no luck".into())));
        let rejected: Result<String, Reject> = Err(Reject(JobError::BadInput("too long".into())));
        assert_eq!(rejected.into_job_output(), Err(JobError::BadInput("too long".into())));
        let fine: Result<String, Reject> = Ok("ok".into());
        assert_eq!(fine.into_job_output().map(|out| out.bytes), Ok(Bytes::from_static(b"ok")));
    }
}
