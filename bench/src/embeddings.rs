//! Benchmark of the embeddings blueprint (work in progress).

fn main() {}
