//! Gateway tests against a real anvil with in-process nodes.

mod ai;
mod async_calls;
mod catalogue_events;
mod common;
mod deviation;
mod e2e;
mod faults;
mod interop;
mod kill9;
mod openai;
mod refusals;
mod settlement;
mod verification;
mod x402;
