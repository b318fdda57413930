//! x402 tests.
