//! The `switchboard` binary's command-line contract, as a process.

switchboard_tests::binary_suite!(env!("CARGO_BIN_EXE_switchboard"));
switchboard_tests::binary_tls_suite!(env!("CARGO_BIN_EXE_switchboard"));
