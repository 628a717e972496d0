//! The `switchboard-mio` binary's command-line contract, as a process.

#[path = "../../adapter-tokio/tests/binary_contract/mod.rs"]
mod binary_contract;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard-mio");

#[test]
fn refuses_to_start_without_a_secret_naming_the_flag() {
    binary_contract::refuses_to_start_without_a_secret_naming_the_flag(BINARY);
}

#[test]
fn redis_flag_fails_with_a_clear_message() {
    binary_contract::redis_flag_fails_with_a_clear_message(BINARY);
}

#[test]
fn serves_from_environment_settings_and_drains_on_sigterm() {
    binary_contract::serves_from_environment_settings_and_drains_on_sigterm(BINARY);
}
