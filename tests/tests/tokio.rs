//! The end-to-end suite against `switchboard-tokio`.

switchboard_tests::suite!(switchboard_tests::adapters::Tokio);
