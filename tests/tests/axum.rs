//! The end-to-end suite against `switchboard-tokio`'s axum mount: every case through an
//! application's own axum `Router` with the gateway merged in (see `suite!` for the cases of a
//! server's own sockets, left out), and the application's route beside it.

switchboard_tests::suite!(mounted: switchboard_tests::adapters::Axum);

use switchboard_tests::adapters::{Axum, AXUM_APP_HELLO};
use switchboard_tests::http::{exchange, get_request};
use switchboard_tests::ws::Client;
use switchboard_tests::{Adapter, Settings};

/// The application's own route answers next to the mounted gateway, before, while and after a
/// WebSocket is connected through it; the gateway's routes are the server's.
#[test]
fn the_applications_own_route_answers_beside_the_gateway() {
    switchboard_tests::run(|| async {
        let server = Axum::start(Settings::default());
        let hello = |server: &switchboard_tests::TestServer| {
            let addr = server.addr;
            async move { exchange(addr, &get_request("/hello", &[])).await }
        };
        let r = hello(&server).await;
        r.assert_status(200, "GET /hello");
        assert_eq!(r.text(), AXUM_APP_HELLO);

        let (mut client, _) = Client::authed(&server, "next-to-the-app").await;
        let r = hello(&server).await;
        r.assert_status(200, "GET /hello with a WebSocket open");
        assert_eq!(r.text(), AXUM_APP_HELLO);
        server.get("/healthz").await.assert_status(200, "/healthz");
        let stats = server.stats().await;
        assert_eq!(stats["connections"], serde_json::json!(1), "{stats}");
        client.expect_nothing_pending().await;

        // Not the application's, nor the gateway's: the server's JSON 404 (the fallback).
        server
            .get("/nothing-here")
            .await
            .assert_api_error(404, "GET of a path nobody serves");
    });
}

/// `Router::nest` serves the gateway under a prefix: the core sees the path without it.
#[test]
fn the_gateway_nested_under_a_prefix_serves_there() {
    use std::net::SocketAddr;

    use axum::Router;
    use switchboard_tests::util::token;
    use switchboard_tokio::Gateway;

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let settings = Settings::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gateway = Gateway::new(settings.server_config()).unwrap();
        let handle = gateway.handle();
        let app = Router::new().nest("/realtime", gateway.router());
        let driver = tokio::spawn(gateway.run());
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });

        let target = format!(
            "/realtime/ws?token={}",
            token(&settings.jwt_secret, "nested")
        );
        let mut client = Client::try_connect(addr, &target, &[], "nested")
            .await
            .expect("an upgrade at /realtime/ws");
        client.recv_type("auth_success").await;
        let r = exchange(addr, &get_request("/realtime/healthz", &[])).await;
        r.assert_status(200, "GET /realtime/healthz");
        let r = exchange(addr, &get_request("/healthz", &[])).await;
        r.assert_status(404, "GET /healthz outside the prefix");

        handle.shutdown().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), driver)
            .await
            .expect("drained")
            .unwrap()
            .unwrap();
    });
}

/// Served without the peers' addresses (`into_make_service`), the gateway answers a JSON 500
/// naming what is missing, instead of guessing an address or panicking.
#[test]
fn without_connect_info_the_gateway_answers_500() {
    use axum::Router;
    use switchboard_tokio::Gateway;

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gateway = Gateway::new(Settings::default().server_config()).unwrap();
        let app = Router::new().merge(gateway.router());
        tokio::spawn(gateway.run());
        tokio::spawn(async move { axum::serve(listener, app.into_make_service()).await });

        for path in ["/healthz", "/ws"] {
            let r = exchange(addr, &get_request(path, &[])).await;
            r.assert_api_error(500, path);
            assert!(
                r.text().contains("into_make_service_with_connect_info"),
                "{}",
                r.text()
            );
        }
    });
}

/// With `metrics_listen`, the gateway serves `/metrics` (and `/healthz`) on that address of its
/// own, as the server does, and leaves `/metrics` on the application's port to the application.
#[test]
fn metrics_listen_is_served_by_the_gateway_and_not_mounted() {
    use std::net::SocketAddr;

    use axum::routing::get;
    use axum::Router;
    use switchboard_tokio::Gateway;

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Settings::default().server_config();
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let gateway = Gateway::new(config).unwrap();
        let metrics = gateway.metrics_addr().expect("bound by new");
        let app = Router::new()
            .route("/metrics", get(|| async { "the application's metrics" }))
            .merge(gateway.router());
        tokio::spawn(gateway.run());
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });

        let r = exchange(metrics, &get_request("/metrics", &[])).await;
        r.assert_status(200, "GET /metrics on metrics_listen");
        assert!(r.text().contains("switchboard_connections"), "{}", r.text());
        let r = exchange(addr, &get_request("/metrics", &[])).await;
        r.assert_status(200, "GET /metrics on the application's port");
        assert_eq!(r.text(), "the application's metrics");
    });
}
