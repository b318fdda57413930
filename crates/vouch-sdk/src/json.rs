//! [`Json`]: JSON inputs in, JSON output out.

use serde::{Serialize, de::DeserializeOwned};

use crate::{FromJobCall, IntoJobOutput, JobCall, JobError, JobOutput};

/// JSON inputs or output.
///
/// As an extractor, parses the call's inputs as a `T`; inputs that are not valid JSON, have trailing
/// bytes, or do not match `T` are rejected with [`JobError::BadInput`] naming the field at fault
/// (for example ``bad input: at `items[2].name`: invalid type: integer `5`, expected a string at line 1
/// column 27``). As an output, serializes `T` with `serde_json::to_vec` (compact, field order of the
/// type: deterministic, so honest operators produce identical bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<S, T: DeserializeOwned> FromJobCall<S> for Json<T> {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        parse(&call.inputs).map(Json)
    }
}

fn parse<T: DeserializeOwned>(inputs: &[u8]) -> Result<T, JobError> {
    let mut deserializer = serde_json::Deserializer::from_slice(inputs);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            JobError::BadInput(format!("inputs are not the expected JSON: {inner}"))
        } else {
            JobError::BadInput(format!("at `{path}`: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| JobError::BadInput(format!("inputs have bytes after the JSON value: {error}")))?;
    Ok(value)
}

impl<T: Serialize> IntoJobOutput for Json<T> {
    fn into_job_output(self) -> Result<JobOutput, JobError> {
        serde_json::to_vec(&self.0)
            .map(JobOutput::new)
            .map_err(|error| JobError::Handler(format!("could not serialize the output as JSON: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;
    use serde::Deserialize;
    use vouch_primitives::{CallId, ServiceId};

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Order {
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Item {
        name: String,
    }

    fn extract(inputs: &'static str) -> Result<Json<Order>, JobError> {
        let call = JobCall::new(ServiceId(1), CallId::from(1), 0, Address::ZERO, inputs);
        Json::<Order>::from_job_call(&call, &())
    }

    #[test]
    fn parses_matching_json() -> Result<(), JobError> {
        let Json(order) = extract(r#"{"items":[{"name":"a"}]}"#)?;
        assert_eq!(order, Order { items: vec![Item { name: "a".into() }] });
        Ok(())
    }

    #[test]
    fn rejection_names_the_field() {
        let error = extract(r#"{"items":[{"name":"a"},{"name":5}]}"#).err();
        let Some(JobError::BadInput(message)) = error else { panic!("expected BadInput, got {error:?}") };
        assert!(message.contains("`items[1].name`"), "{message}");
        assert!(message.contains("expected a string"), "{message}");

        let error = extract(r#"{"itemz":[]}"#).err();
        let Some(JobError::BadInput(message)) = error else { panic!("expected BadInput, got {error:?}") };
        assert!(message.contains("missing field `items`"), "{message}");
    }

    #[test]
    fn rejects_invalid_json_and_trailing_bytes() {
        assert!(matches!(extract("not json"), Err(JobError::BadInput(_))));
        assert!(matches!(extract(""), Err(JobError::BadInput(_))));
        let error = extract(r#"{"items":[]} {}"#).err();
        let Some(JobError::BadInput(message)) = error else { panic!("expected BadInput, got {error:?}") };
        assert!(message.contains("after the JSON value"), "{message}");
    }

    #[test]
    fn output_is_compact_json() -> Result<(), JobError> {
        let out = Json(Order { items: vec![Item { name: "a".into() }] }).into_job_output()?;
        assert_eq!(&out.bytes[..], br#"{"items":[{"name":"a"}]}"#);
        Ok(())
    }
}
