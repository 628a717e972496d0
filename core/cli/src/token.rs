//! The `token` subcommand: a client token for trying things out.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::auth::{sign_hs256, Claims};

use crate::flags::NO_SECRET;

/// `token`: prints a client token signed with the server's secret.
pub(crate) fn print_token(
    binary_name: &str,
    sub: String,
    ttl: Duration,
    device: Option<String>,
    topics: Option<Vec<String>>,
    secret: Option<String>,
) -> ExitCode {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        eprintln!("{binary_name}: {NO_SECRET}");
        return ExitCode::from(2);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        sub,
        exp: (now + ttl).as_secs(),
        device,
        topics,
        info: None,
    };
    println!("{}", sign_hs256(secret.as_bytes(), &claims));
    ExitCode::SUCCESS
}
