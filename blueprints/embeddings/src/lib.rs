//! The embeddings blueprint (work in progress).
