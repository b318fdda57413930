//! Why a job produced no output.

use tower::BoxError;

/// A job failed. Never a crash: every failure of a handler, an extractor or a layer ends up here,
/// and the router keeps serving the next call.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// No handler is routed at this job index.
    #[error("this blueprint has no job {job_index}")]
    UnknownJob {
        /// The job index that was called.
        job_index: u8,
    },
    /// An extractor rejected the inputs; the message says what is wrong and where.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The handler returned an error (its `Display` text).
    #[error("job failed: {0}")]
    Handler(String),
    /// The handler panicked (the panic message).
    #[error("job panicked: {0}")]
    Panicked(String),
    /// A timeout layer fired before the handler finished.
    #[error("job timed out")]
    Timeout,
    /// A concurrency or load-shedding layer refused the call.
    #[error("operator overloaded: too many jobs running, retry later")]
    Overloaded,
}

impl JobError {
    /// A stable, machine-readable code for HTTP answers and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownJob { .. } => "unknown_job",
            Self::BadInput(_) => "bad_input",
            Self::Handler(_) => "handler_error",
            Self::Panicked(_) => "panicked",
            Self::Timeout => "timeout",
            Self::Overloaded => "overloaded",
        }
    }

    /// True when the caller can fix the failure by changing the call (unknown job, bad input):
    /// an HTTP front end answers 4xx for these and 5xx (or 503 for [`JobError::Overloaded`]) otherwise.
    pub fn is_caller_fault(&self) -> bool {
        matches!(self, Self::UnknownJob { .. } | Self::BadInput(_))
    }

    /// Turns the error of a tower layer back into a job error.
    ///
    /// A [`JobError`] from an inner service passes through; tower's timeout
    /// ([`tower::timeout::error::Elapsed`]) becomes [`JobError::Timeout`]; tower's load shedding
    /// ([`tower::load_shed::error::Overloaded`]) becomes [`JobError::Overloaded`]; anything else
    /// becomes [`JobError::Handler`] with the error's text.
    pub fn from_layer_error(error: BoxError) -> Self {
        let error = match error.downcast::<JobError>() {
            Ok(job_error) => return *job_error,
            Err(other) => other,
        };
        if error.is::<tower::timeout::error::Elapsed>() {
            Self::Timeout
        } else if error.is::<tower::load_shed::error::Overloaded>() {
            Self::Overloaded
        } else {
            Self::Handler(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_errors_map_to_job_errors() {
        let inner: BoxError = Box::new(JobError::BadInput("x".into()));
        assert_eq!(JobError::from_layer_error(inner), JobError::BadInput("x".into()));
        let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(JobError::from_layer_error(elapsed), JobError::Timeout);
        let shed: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
        assert_eq!(JobError::from_layer_error(shed), JobError::Overloaded);
        let other: BoxError = "disk on fire".into();
        assert_eq!(JobError::from_layer_error(other), JobError::Handler("disk on fire".into()));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(JobError::UnknownJob { job_index: 9 }.code(), "unknown_job");
        assert_eq!(JobError::BadInput(String::new()).code(), "bad_input");
        assert_eq!(JobError::Handler(String::new()).code(), "handler_error");
        assert_eq!(JobError::Panicked(String::new()).code(), "panicked");
        assert_eq!(JobError::Timeout.code(), "timeout");
        assert_eq!(JobError::Overloaded.code(), "overloaded");
        assert!(JobError::UnknownJob { job_index: 9 }.is_caller_fault());
        assert!(!JobError::Timeout.is_caller_fault());
    }
}
