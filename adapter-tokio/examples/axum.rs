//! Switchboard mounted in an application's own axum server, on the application's port: its
//! page at `/` and a route of its own, `POST /notify/{user}`, which pushes the body to that
//! user through the `Handle`; beside them the gateway's `/ws`, `/api/*`, `/healthz`,
//! `/metrics`, `/client.js` and `/admin`.
//!
//! ```sh
//! cargo run -p switchboard-tokio --features axum --example axum     # prints a token for alice
//! websocat "ws://127.0.0.1:3000/ws?token=$ALICE"
//! -> {"type":"subscribe","topic":"news"}
//! curl -d '{"topic":"news","data":{"text":"hi"}}' -H 'Authorization: apikey dev-key' \
//!   http://127.0.0.1:3000/api/publish
//! curl -d 'your order shipped' http://127.0.0.1:3000/notify/alice  # the application's route
//! ```

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::value::RawValue;
use switchboard_core::auth;
use switchboard_tokio::{Gateway, Handle, ServerConfig};
use tokio::net::TcpListener;

/// The HS256 secret (the reference server's `--jwt-secret change-me` mints the same tokens).
pub(crate) const SECRET: &str = "change-me";
/// The key of the HTTP API (`Authorization: apikey dev-key`).
pub(crate) const API_KEY: &str = "dev-key";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    let addr = listener.local_addr()?;
    println!("alice: websocat 'ws://{addr}/ws?token={}'", token("alice"));
    let (app, gateway) = mount(addr)?;
    let handle = gateway.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = handle.shutdown(); // everyone gets 1001, then `serve` returns
    });
    serve(listener, app, gateway).await
}

/// The application's routes with the gateway merged in. `addr` is the application's: a mount
/// binds nothing (`ServerConfig::listen` is unused).
pub(crate) fn mount(addr: SocketAddr) -> std::io::Result<(Router, Gateway)> {
    let mut config = ServerConfig::new(addr, SECRET);
    config.api_key = Some(API_KEY.into());
    let gateway = Gateway::new(config)?;
    let app = Router::new()
        .route("/", get(home))
        .route("/notify/{user}", post(notify))
        .with_state(gateway.handle())
        .merge(gateway.router());
    Ok((app, gateway))
}

/// Serves `app` on `listener` until a shutdown of the gateway has drained; then axum's server
/// stops too. The gateway needs the peers' addresses: `into_make_service_with_connect_info`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    gateway: Gateway,
) -> std::io::Result<()> {
    let (ended, on_end) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(async move {
        let result = gateway.run().await;
        drop(ended);
        result
    });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = on_end.await;
        })
        .await?;
    driver.await.map_err(std::io::Error::other)?
}

/// The application's own page.
async fn home() -> &'static str {
    "an axum application, with Switchboard at /ws and /api\n"
}

/// Pushes `{"notice": <body>}` to every connection of `user`; answers how many it reached.
async fn notify(State(handle): State<Handle>, Path(user): Path<String>, body: String) -> String {
    let notice = serde_json::json!({ "notice": body });
    let data = RawValue::from_string(notice.to_string()).expect("JSON");
    match handle.send_to_user(&user, data).await {
        Ok(reached) => format!("reached {reached} connection(s)\n"),
        Err(_) => "stopped\n".into(),
    }
}

/// A token for `user`, for an hour (your backend mints it).
pub(crate) fn token(user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = auth::Claims {
        sub: user.into(),
        exp: now.as_secs() + 3600,
        device: None,
        topics: None,
        info: None,
    };
    auth::sign_hs256(SECRET.as_bytes(), &claims)
}
