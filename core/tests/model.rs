//! Model-based test: random sequences of inputs run against the core and against the reference
//! model of `switchboard-model` (`core/model/`, which the `event_sequences` fuzz target runs
//! too); every invariant of SPEC.md is checked after every step, and the model predicts every
//! reply, close, ping, publish, push and presence push exactly (see that crate's docs).
//!
//! 1,000 cases per run; set `SWITCHBOARD_MODEL_CASES` for more.

use proptest::prelude::*;
use switchboard_model::strategy::{ops, setup};

fn cases() -> u32 {
    std::env::var("SWITCHBOARD_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn core_agrees_with_the_reference_model(setup in setup(), ops in ops()) {
        switchboard_model::run(&setup, &ops);
    }
}
