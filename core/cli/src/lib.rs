//! `switchboard-cli`: the command line of the Switchboard server binaries (`switchboard` and
//! `switchboard-mio` both start through [`start`]): every setting of SPEC.md as a flag with a
//! `SWITCHBOARD_*` environment fallback, the `token` subcommand, and the process setup both
//! need (logging, the open-file limit).
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! const BINARY: switchboard_cli::Binary = switchboard_cli::Binary {
//!     name: "switchboard",
//!     version: "0.1.0",
//!     about: "A WebSocket connection manager",
//! };
//!
//! fn main() -> ExitCode {
//!     let config = match switchboard_cli::start(BINARY) {
//!         Ok(config) => config,
//!         Err(exit) => return exit,
//!     };
//!     // ... bind a server on `config` and run it
//! #   let _ = config;
//!     ExitCode::SUCCESS
//! }
//! ```

#![warn(missing_docs)]

mod flags;
mod limits;
mod token;

use std::process::ExitCode;

use switchboard_core::ServerConfig;
use tracing::warn;

use crate::flags::Command;

/// The binary being started: what `--help` and `--version` show, and the name error messages
/// begin with.
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    /// The binary's name (`env!("CARGO_BIN_NAME")`): the command's name, the prefix of the
    /// messages printed before exiting with status 2.
    pub name: &'static str,
    /// What `--version` prints after the name (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// The first line of `--help`.
    pub about: &'static str,
}

/// Parses the command line and prepares the process: runs the `token` subcommand, or sets up
/// logging, raises the open-file limit and returns the server's configuration. `Err` carries
/// the exit status when there is nothing (more) to serve.
///
/// Exits the process itself (as clap does) on `--help`, `--version` and flags it cannot parse.
pub fn start(binary: Binary) -> Result<ServerConfig, ExitCode> {
    let cli = flags::parse(binary);
    if let Some(Command::Token {
        sub,
        ttl,
        device,
        topics,
        jwt_secret,
    }) = cli.command
    {
        return Err(token::print_token(
            binary.name,
            sub,
            ttl,
            device,
            topics,
            jwt_secret,
        ));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let limit = match limits::raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            None
        }
    };
    cli.server.into_config(limit).map_err(|message| {
        eprintln!("{}: {message}", binary.name);
        ExitCode::from(2)
    })
}
