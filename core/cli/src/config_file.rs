//! `--config FILE`: the server's flags as keys of a TOML file (a flag's name with `_` for `-`),
//! below the command line and the environment, above the defaults; and `config example`, a
//! commented file with every key and its default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::Spanned;

/// Arguments that are not settings a file may hold.
const NOT_KEYS: [&str; 3] = ["help", "version", "config"];

/// The server settings of `cmd`: its arguments with a long flag, but `--config` itself.
fn settings(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_long().is_some() && !NOT_KEYS.contains(&a.get_id().as_str()))
}

/// Reads `path` and returns `argv` with `--flag value` appended for every key whose flag was
/// given neither on the command line nor in the environment. An unreadable file, an unknown
/// key or a bad value is an error naming the file, the line and the key.
pub(crate) fn apply(
    cmd: &Command,
    path: &Path,
    mut argv: Vec<OsString>,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--config {file}: cannot read it: {e}"))?;
    let table: BTreeMap<String, Spanned<toml::Value>> = toml::from_str(&text)
        .map_err(|e| format!("--config {file}: not a valid TOML file: {}", e.message()))?;
    let mut entries: Vec<(String, Spanned<toml::Value>)> = table.into_iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    for (key, value) in entries {
        let line = 1 + text[..value.span().start].matches('\n').count();
        let at = format!("{file}:{line}: key `{key}`");
        let Some(arg) = settings(cmd).find(|a| a.get_id() == key.as_str()) else {
            return Err(format!(
                "{file}:{line}: unknown key `{key}` (a key is a flag's name with _ for -; \
                 `{} config example` prints them all)",
                cmd.get_name()
            ));
        };
        let flag = format!("--{}", arg.get_long().unwrap_or_default());
        if is_switch(arg) {
            // A switch (`--demo`) takes no value: `true` gives it, `false` leaves it out.
            let on = match value.into_inner() {
                toml::Value::Boolean(on) => on,
                other => {
                    return Err(format!(
                        "{at}: must be true or false, not {}",
                        other.type_str()
                    ))
                }
            };
            if on
                && matches!(
                    matches.value_source(&key),
                    None | Some(ValueSource::DefaultValue)
                )
            {
                argv.push(flag.into());
            }
            continue;
        }
        let value = as_flag_value(value.into_inner()).map_err(|e| format!("{at}: {e}"))?;
        // The value alone, as the flag would take it: its error names the key and the line.
        if let Err(e) = cmd
            .clone()
            .try_get_matches_from([cmd.get_name(), &flag, &value])
        {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            return Err(format!("{at}: {}", first.trim_start_matches("error: ")));
        }
        if matches!(
            matches.value_source(&key),
            None | Some(ValueSource::DefaultValue)
        ) {
            argv.push(flag.into());
            argv.push(value.into());
        }
    }
    Ok(argv)
}

/// Whether `arg` is a switch, given or not, without a value (`--demo`): a boolean key.
fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// A TOML value as the text its flag takes: strings as they are, integers in decimal, an
/// array of strings comma-separated (the list flags).
fn as_flag_value(value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s),
                other => Err(format!("a list holds strings, not {}", other.type_str())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        other => Err(format!(
            "must be a string, an integer or a list of strings, not {}",
            other.type_str()
        )),
    }
}

/// A TOML file with every key commented out at its default, each under its help line.
pub(crate) fn example(cmd: &Command) -> String {
    let mut out = format!(
        "# {name} configuration: `{name} --config FILE`. Each key is a flag's name with _ for -;\n\
         # a flag or its environment variable overrides the file, the file overrides the default.\n\
         # Uncomment what you change.\n",
        name = cmd.get_name()
    );
    for arg in settings(cmd) {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let long = arg.get_long().unwrap_or_default();
        let env = arg
            .get_env()
            .map(|e| format!(", {}", e.to_string_lossy()))
            .unwrap_or_default();
        out.push_str(&format!("\n# {help} (--{long}{env})\n"));
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        if is_switch(arg) {
            out.push_str(&format!("# {} = false\n", arg.get_id().as_str()));
            continue;
        }
        if !choices.is_empty() {
            out.push_str(&format!("# One of: {}.\n", choices.join(", ")));
        }
        let key = arg.get_id().as_str();
        match arg.get_default_values().first() {
            Some(default) => {
                let default = default.to_string_lossy();
                let value = match default.parse::<i64>() {
                    Ok(n) => n.to_string(),
                    Err(_) => toml::Value::String(default.into_owned()).to_string(),
                };
                out.push_str(&format!("# {key} = {value}\n"));
            }
            None => out.push_str(&format!("# {key} = \"\"  # no default\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::flags::{command, parse_from, ParseFailure};
    use crate::Binary;

    const BIN: Binary = Binary {
        name: "switchboard",
        version: "0",
        about: "test",
    };

    fn file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("switchboard-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn config(args: &[&str]) -> Result<switchboard_core::ServerConfig, String> {
        let argv: Vec<OsString> = std::iter::once("switchboard")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        match parse_from(BIN, argv) {
            Ok(cli) => cli.server.into_config(None),
            Err(ParseFailure::ConfigFile(message)) => Err(message),
            Err(ParseFailure::Flags(e)) => Err(e.to_string()),
        }
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let path = file(
            "precedence.toml",
            "jwt_secret = \"from-file\"\nmax_subscriptions = 7\nping_interval = \"3s\"\n\
             history_ttl = \"9m\"\nallowed_origins = [\"https://a.example\", \"https://b.example\"]\n",
        );
        // The only test that sets this variable; the others leave history_ttl alone.
        std::env::set_var("SWITCHBOARD_HISTORY_TTL", "2m");
        let c = config(&["--config", path.to_str().unwrap(), "--ping-interval", "4s"]).unwrap();
        std::env::remove_var("SWITCHBOARD_HISTORY_TTL");
        assert_eq!(c.core.max_subscriptions, 7, "file over default");
        assert_eq!(
            c.core.ping_interval,
            Duration::from_secs(4),
            "flag over file"
        );
        assert_eq!(
            c.core.history_ttl,
            Duration::from_secs(120),
            "environment over file"
        );
        assert_eq!(c.jwt_secret, b"from-file");
        assert_eq!(
            c.core.pong_timeout,
            Duration::from_secs(60),
            "default where nothing is said"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_file_line_and_key() {
        let path = file(
            "unknown.toml",
            "jwt_secret = \"s\"\n\nmax_subscription = 3\n",
        );
        let e = config(&["--config", path.to_str().unwrap()]).unwrap_err();
        let expected = format!("{}:3: unknown key `max_subscription`", path.display());
        assert!(e.starts_with(&expected), "{e}");
        assert!(e.contains("config example"), "{e}");
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_file_line_key_and_flag() {
        for (text, names) in [
            ("max_subscriptions = \"many\"", "--max-subscriptions"),
            ("ping_interval = \"soon\"", "--ping-interval"),
            ("session_policy = \"sometimes\"", "--session-policy"),
            ("max_subscriptions = true", "not boolean"),
            ("allowed_origins = [1]", "list holds strings"),
        ] {
            let path = file("bad.toml", &format!("jwt_secret = \"s\"\n{text}\n"));
            let e = config(&["--config", path.to_str().unwrap()]).unwrap_err();
            let key = text.split(' ').next().unwrap();
            let expected = format!("{}:2: key `{key}`: ", path.display());
            assert!(e.starts_with(&expected) && e.contains(names), "{text}: {e}");
        }
    }

    #[test]
    fn a_public_key_replaces_the_secret_and_a_bad_one_is_refused_naming_the_flag() {
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys/ec-public.pem");
        let c = config(&["--jwt-public-key", key]).unwrap();
        assert_eq!(c.jwt_public_key.unwrap().algorithm(), "ES256");
        let e = config(&["--jwt-public-key", key, "--jwt-secret", "s"]).unwrap_err();
        assert!(e.contains("give one of them"), "{e}");
        let private = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys/ec-private.pem");
        let e = config(&["--jwt-public-key", private]).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "--jwt-public-key {private}: this is a private key"
            )),
            "{e}"
        );
        let e = config(&["--jwt-public-key", "/nonexistent.pem"]).unwrap_err();
        assert!(
            e.contains("--jwt-public-key /nonexistent.pem: cannot read it"),
            "{e}"
        );
    }

    #[test]
    fn metrics_listen_resolves_and_the_address_of_listen_itself_is_refused() {
        let base = ["--jwt-secret", "s", "--listen", "127.0.0.1:9001"];
        let c = config(&[&base[..], &["--metrics-listen", "localhost:9090"]].concat()).unwrap();
        assert_eq!(c.metrics_listen.map(|a| a.port()), Some(9090));
        assert!(c.metrics_listen.unwrap().ip().is_loopback());
        assert_eq!(config(&base).unwrap().metrics_listen, None);
        let e = config(&[&base[..], &["--metrics-listen", "127.0.0.1:9001"]].concat()).unwrap_err();
        assert!(
            e.starts_with("--metrics-listen 127.0.0.1:9001: the same address as --listen"),
            "{e}"
        );
        let e = config(&[&base[..], &["--metrics-listen", "no port"]].concat()).unwrap_err();
        assert!(
            e.starts_with("--metrics-listen \"no port\": not an address"),
            "{e}"
        );
    }

    #[test]
    fn the_tls_files_come_from_the_file_and_one_alone_is_refused_naming_the_other() {
        let path = file(
            "tls.toml",
            "jwt_secret = \"s\"\ntls_cert = \"/etc/sb/cert.pem\"\ntls_key = \"/etc/sb/key.pem\"\n",
        );
        let c = config(&["--config", path.to_str().unwrap()]).unwrap();
        let expected = switchboard_core::http::TlsFiles::new("/etc/sb/cert.pem", "/etc/sb/key.pem");
        assert_eq!(c.tls, Some(expected));
        assert_eq!(config(&["--jwt-secret", "s"]).unwrap().tls, None);
        let e = config(&["--jwt-secret", "s", "--tls-cert", "c.pem"]).unwrap_err();
        assert!(e.starts_with("--tls-cert without --tls-key"), "{e}");
        let e = config(&["--jwt-secret", "s", "--tls-key", "k.pem"]).unwrap_err();
        assert!(e.starts_with("--tls-key without --tls-cert"), "{e}");
    }

    #[test]
    fn demo_is_off_by_default_and_on_by_flag_environment_or_file() {
        let base = ["--jwt-secret", "s"];
        assert!(!config(&base).unwrap().demo);
        assert!(config(&[&base[..], &["--demo"]].concat()).unwrap().demo);
        for (text, on) in [("demo = true\n", true), ("demo = false\n", false)] {
            let path = file("demo.toml", text);
            let args = [&base[..], &["--config", path.to_str().unwrap()]].concat();
            assert_eq!(config(&args).unwrap().demo, on, "{text}");
        }
        let path = file("demo-bad.toml", "\ndemo = \"yes\"\n");
        let e = config(&[&base[..], &["--config", path.to_str().unwrap()]].concat()).unwrap_err();
        assert!(
            e.ends_with("demo-bad.toml:2: key `demo`: must be true or false, not string"),
            "{e}"
        );
        let example = super::example(&command(BIN));
        assert!(example.contains("\n# demo = false\n"), "{example}");
        let e = config(&[&base[..], &["--demo=true"]].concat()).unwrap_err();
        assert!(
            e.contains("unexpected value 'true'"),
            "a switch takes no value: {e}"
        );
    }

    #[test]
    fn a_missing_or_malformed_file_is_refused_naming_it() {
        let e = config(&["--config", "/nonexistent/switchboard.toml"]).unwrap_err();
        assert!(
            e.contains("--config /nonexistent/switchboard.toml: cannot read it"),
            "{e}"
        );
        let path = file("malformed.toml", "jwt_secret = \n");
        let e = config(&["--config", path.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("not a valid TOML file"), "{e}");
    }

    #[test]
    fn the_example_uncommented_is_a_valid_file_of_every_default() {
        let cmd = command(BIN);
        let example = super::example(&cmd);
        let uncommented: String = example
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .filter(|l| !l.contains("# no default"))
            .map(|l| format!("{l}\n"))
            .collect();
        let keys = uncommented.lines().count();
        let with_defaults = super::settings(&cmd)
            .filter(|a| !a.get_default_values().is_empty() || super::is_switch(a))
            .count();
        assert_eq!(keys, with_defaults, "every key with a default:\n{example}");
        let path = file("example.toml", &uncommented);
        let from_file = config(&["--config", path.to_str().unwrap(), "--jwt-secret", "s"]).unwrap();
        let defaults = config(&["--jwt-secret", "s"]).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }
}
