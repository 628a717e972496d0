//! The end-to-end suite against `switchboard-mio`.

switchboard_tests::suite!(switchboard_tests::adapters::Mio);
