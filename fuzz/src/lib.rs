//! Input types, drivers and oracles of switchboard-core's cargo-fuzz targets.
//!
//! Each target in `fuzz_targets/` is one line: it hands a `#[derive(Arbitrary)]` input to a
//! `run` function here. The drivers assert what can be checked from outside the core: the wire
//! format of every server message, the close codes of PROTOCOL.md, and SPEC.md's invariants.
//!
//! Every input type also implements [`enc::Encode`], the inverse of its `Arbitrary` decoding,
//! so that `examples/seeds.rs` can write seed files that decode to chosen inputs (it checks the
//! round trip, so a change in `arbitrary`'s format fails loudly instead of silently).

pub mod check;
pub mod enc;
pub mod events;
pub mod frames;
pub mod handshake;
pub mod tokens;

pub use enc::{Bytes, Encode, Text};
