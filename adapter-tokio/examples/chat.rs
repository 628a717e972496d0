//! A chat server on `switchboard-tokio`. Rooms are topics `chat.<room>`: clients join and post
//! with the protocol's own `subscribe` and `message` (the server stamps `senderId`); the
//! application announces in `chat.lobby` who comes online.
//!
//! ```sh
//! cargo run -p switchboard-tokio --example chat          # prints a token for alice and bob
//! websocat "ws://127.0.0.1:9001/ws?token=$ALICE"
//! -> {"type":"subscribe","topic":"chat.*"}
//! -> {"type":"message","topic":"chat.lobby","data":{"text":"hello"}}
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use switchboard_core::auth;
use switchboard_tokio::{Handle, Server, ServerConfig};

/// The HS256 secret (the reference server's `--jwt-secret change-me` mints the same tokens).
pub(crate) const SECRET: &str = "change-me";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = bind("127.0.0.1:9001".parse().expect("an address")).await?;
    let addr = server.local_addr();
    for user in ["alice", "bob"] {
        println!("{user}: websocat 'ws://{addr}/ws?token={}'", token(user));
    }
    let handle = server.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = handle.shutdown(); // everyone gets 1001, then `run` returns
    });
    server.run().await
}

/// Binds the chat server on `listen` and starts its announcer; `run` it to serve.
pub(crate) async fn bind(listen: SocketAddr) -> std::io::Result<Server> {
    let server = Server::bind(ServerConfig::new(listen, SECRET)).await?;
    tokio::spawn(announce(server.handle()));
    Ok(server)
}

/// A token for `user`, for an hour, that may use the chat rooms only (your backend mints it).
pub(crate) fn token(user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = auth::Claims {
        sub: user.into(),
        exp: now.as_secs() + 3600,
        device: None,
        topics: Some(vec!["chat.*".into()]),
        info: None,
    };
    auth::sign_hs256(SECRET.as_bytes(), &claims)
}

/// Publishes `{"system":"<user> is online"}` in `chat.lobby` when a user comes online. The
/// `Handle` answers queries, not events: this asks for the online users five times a second.
async fn announce(handle: Handle) {
    let mut known = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let Ok(online) = handle.online_users().await else {
            return; // the server stopped
        };
        let online: BTreeSet<String> = online.into_iter().collect();
        for user in online.difference(&known) {
            let text = serde_json::json!({ "system": format!("{user} is online") });
            let data = RawValue::from_string(text.to_string()).expect("JSON");
            if handle.publish("chat.lobby", data, None).await.is_err() {
                return;
            }
        }
        known = online;
    }
}
