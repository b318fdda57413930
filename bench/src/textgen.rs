//! Benchmark of the textgen blueprint (work in progress).

fn main() {}
