//! [`EmbeddingTolerance`]: do two operators' embeddings responses agree within floating-point noise?

use serde::Deserialize;
use vouch_sdk::{Agreement, Verifier};

/// Smallest cosine similarity accepted between two operators' embeddings of the same input.
///
/// Measured (blueprints/embeddings/README.md): honest differences (batch composition, thread count, candle vs
/// PyTorch) give 1 − cosine ≤ 1.1e-12; the closest substitute measured (weights rounded to f16) gives 1.3e-7,
/// bf16 1.1e-5, int8 9e-4.
pub const MIN_COSINE: f64 = 1.0 - 1e-8;

/// Largest difference accepted in any one dimension.
///
/// Measured (README): honest differences are ≤ 2.3e-7 (candle vs PyTorch on 512 texts of up to 256 tokens; batch
/// composition 1.1e-7; thread count 0); weights rounded to f16 give 9.9e-5, bf16 8.2e-4, int8 7.7e-3, one layer
/// dropped 0.68, a cached answer for another sentence 0.14.
pub const MAX_ABS_DIFF: f64 = 1e-5;

/// The embeddings job's verifier: both outputs must be OpenAI embeddings responses of identical structure
/// (`object`, `model`, `usage`, the number of embeddings, their `index`es and dimensions), and every pair of
/// vectors must have cosine similarity ≥ `min_cosine` and differ by at most `max_abs_diff` in every dimension.
///
/// Floats are compared, never hashed: two honest operators rarely produce identical bytes (batch composition and
/// kernels change the last bits), and a hash of rounded floats flips at rounding edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbeddingTolerance {
    /// See [`MIN_COSINE`].
    pub min_cosine: f64,
    /// See [`MAX_ABS_DIFF`].
    pub max_abs_diff: f64,
}

impl Default for EmbeddingTolerance {
    fn default() -> Self {
        Self { min_cosine: MIN_COSINE, max_abs_diff: MAX_ABS_DIFF }
    }
}

/// The response as the verifier reads it (floats as f64, so nothing is rounded before comparing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    object: String,
    data: Vec<Data>,
    model: String,
    usage: Usage,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    object: String,
    index: u64,
    embedding: Vec<f64>,
}

#[derive(Deserialize, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

impl Verifier for EmbeddingTolerance {
    fn agrees(&self, own: &[u8], other: &[u8]) -> Agreement {
        let own: Response = match serde_json::from_slice(own) {
            Ok(response) => response,
            Err(error) => return Agreement::disagree(format!("our output is not an embeddings response: {error}")),
        };
        let other: Response = match serde_json::from_slice(other) {
            Ok(response) => response,
            Err(error) => return Agreement::disagree(format!("their output is not an embeddings response: {error}")),
        };
        match self.first_difference(&own, &other) {
            None => Agreement::Agree,
            Some(reason) => Agreement::Disagree { reason },
        }
    }

    fn name(&self) -> &'static str {
        "embedding_tolerance"
    }
}

impl EmbeddingTolerance {
    fn first_difference(&self, own: &Response, other: &Response) -> Option<String> {
        if own.object != "list" || other.object != "list" {
            return Some(format!(
                "`object` is {:?} in ours and {:?} in theirs; both must be \"list\"",
                own.object, other.object
            ));
        }
        if own.model != other.model {
            return Some(format!("`model` differs: ours {:?}, theirs {:?}", own.model, other.model));
        }
        if own.usage != other.usage {
            return Some(format!("`usage` differs: ours {:?}, theirs {:?}", own.usage, other.usage));
        }
        if own.data.len() != other.data.len() {
            return Some(format!("{} embeddings in ours, {} in theirs", own.data.len(), other.data.len()));
        }
        for (position, (a, b)) in own.data.iter().zip(&other.data).enumerate() {
            if a.object != "embedding" || b.object != "embedding" {
                return Some(format!(
                    "`data[{position}].object` must be \"embedding\" (ours {:?}, theirs {:?})",
                    a.object, b.object
                ));
            }
            if a.index != position as u64 || b.index != position as u64 {
                return Some(format!(
                    "`data[{position}].index` is {} in ours and {} in theirs; expected {position}",
                    a.index, b.index
                ));
            }
            if a.embedding.len() != b.embedding.len() {
                return Some(format!(
                    "embedding {position} has {} dimensions in ours, {} in theirs",
                    a.embedding.len(),
                    b.embedding.len()
                ));
            }
            if a.embedding.is_empty() {
                return Some(format!("embedding {position} is empty"));
            }
            let comparison = compare(&a.embedding, &b.embedding);
            // Negated comparisons, so that a NaN (impossible in JSON, cheap to guard) disagrees.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let outside = !(comparison.max_abs_diff <= self.max_abs_diff) || !(comparison.cosine >= self.min_cosine);
            if outside {
                return Some(format!(
                    "embedding {position} differs beyond tolerance: max |Δ| {:.3e} at dimension {} (allowed {:.1e}), \
                     cosine {:.12} (minimum {:.12})",
                    comparison.max_abs_diff, comparison.at, self.max_abs_diff, comparison.cosine, self.min_cosine
                ));
            }
        }
        None
    }
}

/// How two vectors of the same length differ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Cosine similarity (1 for two zero vectors, 0 when only one is zero).
    pub cosine: f64,
    /// Largest absolute difference in one dimension.
    pub max_abs_diff: f64,
    /// The dimension where it occurs (the first one).
    pub at: usize,
}

/// Compares two vectors of the same length (extra dimensions of the longer one are ignored).
pub fn compare(a: &[f64], b: &[f64]) -> Comparison {
    let (mut dot, mut norm_a, mut norm_b) = (0.0f64, 0.0f64, 0.0f64);
    let (mut max_abs_diff, mut at) = (0.0f64, 0usize);
    for (dimension, (&x, &y)) in a.iter().zip(b).enumerate() {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
        let difference = (x - y).abs();
        if difference > max_abs_diff || difference.is_nan() {
            max_abs_diff = difference;
            at = dimension;
        }
    }
    let cosine = match (norm_a == 0.0, norm_b == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => dot / (norm_a.sqrt() * norm_b.sqrt()),
    };
    Comparison { cosine, max_abs_diff, at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddingsResponse;

    fn response(vectors: Vec<Vec<f32>>, tokens: &[usize]) -> Vec<u8> {
        let response = EmbeddingsResponse::new("all-MiniLM-L6-v2".to_owned(), vectors, tokens);
        serde_json::to_vec(&response).unwrap_or_default()
    }

    fn reason(agreement: Agreement) -> String {
        match agreement {
            Agreement::Disagree { reason } => reason,
            Agreement::Agree => panic!("expected a disagreement"),
        }
    }

    fn unit(seed: u32) -> Vec<f32> {
        let raw: Vec<f32> = (0..384).map(|i| ((i * 7 + seed * 13) % 17) as f32 - 8.0).collect();
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        raw.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn structure_must_match_exactly() {
        let verifier = EmbeddingTolerance::default();
        let ours = response(vec![unit(1), unit(2)], &[5, 6]);
        assert_eq!(verifier.agrees(&ours, &ours), Agreement::Agree);
        assert!(
            reason(verifier.agrees(&ours, &response(vec![unit(1)], &[5, 6])))
                .contains("2 embeddings in ours, 1 in theirs")
        );
        assert!(reason(verifier.agrees(&ours, &response(vec![unit(1), unit(2)], &[5, 7]))).contains("`usage` differs"));
        let truncated = response(vec![unit(1), unit(2)[..383].to_vec()], &[5, 6]);
        assert!(
            reason(verifier.agrees(&ours, &truncated))
                .contains("embedding 1 has 384 dimensions in ours, 383 in theirs")
        );
        let other_model = String::from_utf8_lossy(&ours).replace("all-MiniLM-L6-v2", "all-MiniLM-L12-v2");
        assert!(reason(verifier.agrees(&ours, other_model.as_bytes())).contains("`model` differs"));
        let reindexed = String::from_utf8_lossy(&ours).replacen("\"index\":1", "\"index\":0", 1);
        assert!(reason(verifier.agrees(&ours, reindexed.as_bytes())).contains("`data[1].index`"));
        assert!(reason(verifier.agrees(&ours, b"{}")).contains("their output is not an embeddings response"));
        assert!(reason(verifier.agrees(b"[]", &ours)).contains("our output is not an embeddings response"));
        let extra =
            String::from_utf8_lossy(&ours).replacen("{\"object\":\"list\"", "{\"id\":\"x\",\"object\":\"list\"", 1);
        assert!(reason(verifier.agrees(&ours, extra.as_bytes())).contains("unknown field `id`"));
    }

    #[test]
    fn values_must_agree_within_tolerance() {
        let verifier = EmbeddingTolerance::default();
        let ours = response(vec![unit(1)], &[5]);
        let mut nudged = unit(1);
        nudged[10] += 5e-7;
        assert_eq!(verifier.agrees(&ours, &response(vec![nudged], &[5])), Agreement::Agree);
        let mut moved = unit(1);
        moved[10] += 2e-5;
        let why = reason(verifier.agrees(&ours, &response(vec![moved], &[5])));
        assert!(why.contains("embedding 0 differs beyond tolerance") && why.contains("at dimension 10"), "{why}");
        let why = reason(verifier.agrees(&ours, &response(vec![unit(2)], &[5])));
        assert!(why.contains("cosine"), "{why}");
    }

    #[test]
    fn comparison_handles_zero_vectors() {
        assert_eq!(compare(&[0.0, 0.0], &[0.0, 0.0]).cosine, 1.0);
        assert_eq!(compare(&[0.0, 0.0], &[1.0, 0.0]).cosine, 0.0);
        let comparison = compare(&[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!((comparison.cosine, comparison.max_abs_diff, comparison.at), (0.0, 1.0, 0));
    }
}
