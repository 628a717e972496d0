//! Shared pieces of the criterion benches (`benches/*.rs`) and the `loadgen` binary.
//!
//! Each bench group puts `switchboard-core` and the design users commonly write instead side by
//! side, on the same inputs, and ends with a one-line ratio per case printed by [`summary`]:
//! criterion's report is the precise figure, the ratio line is the headline that CI logs keep.

pub mod fixtures;
pub mod summary;
