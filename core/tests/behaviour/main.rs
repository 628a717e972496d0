//! Behaviour tests of `switchboard-core`, driven through its public API only.
//!
//! Each test's name states one behaviour of PROTOCOL.md or SPEC.md; every error code and every
//! limit is checked at its edge (exactly at the limit allowed, one past it refused).

mod auth_message;
mod commands;
mod defaults;
mod determinism;
mod execute;
mod harness;
mod heartbeat;
mod history;
mod limits;
mod open;
mod presence;
mod protocol_errors;
mod session_policies;
mod shutdown;
mod token_expiry;
mod topics;
