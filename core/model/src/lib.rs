//! The reference model of `switchboard-core`, in one place for both of its users: the proptest
//! model test (`core/tests/model.rs`, ops from `strategy`, with feature `proptest`) and the
//! cargo-fuzz target `event_sequences` (`fuzz/src/events.rs`, ops decoded from the fuzzer's
//! bytes).
//!
//! [`run`] drives a `Switchboard` and a simple reference model (a `BTreeMap` of connections,
//! the current time and a naive topic matcher) with the same [`ops::Op`]s, and checks after
//! every step every invariant of SPEC.md. Besides those, the model predicts exactly:
//! - every direct reply (`auth_success`, `auth_error`, `subscribed`, `error` with its code…);
//! - token expiry: 4003 at the first `handle_timeout` at or after `exp` + `jwt_leeway`, never
//!   before, and `poll_timeout` owes it;
//! - the inbound rate limit: its own token bucket says which frame closes with 4029;
//! - the `topics` claim: a subscribe it does not cover gets `error` 403 and subscribes to
//!   nothing, a publish outside it 403 and reaches no one;
//! - who gets an application send (a connection, a device, a user, users, everyone): each
//!   selected connection once, no other;
//! - presence pushes: one per change of a user's count, to each subscriber of its presence
//!   topic, and one snapshot on subscribing to a concrete presence topic.
//!
//! Also, as the fuzz target did before it moved here: the wire format of every server message
//! (`wire`: its type, fields and `timestamp`, the step's wall clock), that the core closes only
//! with PROTOCOL.md's codes, the application's closes and their refusals, transport violations,
//! and graceful shutdown (1001 for all, opens refused, `Stop` once, at the drain deadline).
//!
//! `ops` has the settings and the ops, `reference` the model, `checks` the checks, `harness`
//! the driver, `wire` the wire format's oracles; `strategy` (feature `proptest`) the random
//! ops, kept out of the fuzz build.

mod checks;
mod harness;
pub mod ops;
mod reference;
#[cfg(feature = "proptest")]
pub mod strategy;
pub mod wire;

pub use harness::run;
