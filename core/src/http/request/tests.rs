//! Tests of `request`.
use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("Host", b"example.com"),
        ("Upgrade", b"websocket"),
        ("Connection", b"Upgrade"),
        ("Sec-WebSocket-Key", KEY.as_bytes()),
        ("Sec-WebSocket-Version", b"13"),
    ]
}

fn route_with(method: &str, target: &str, headers: &[(&str, &[u8])]) -> Route {
    route_policy(method, target, headers, &OriginPolicy::any())
}

fn route_policy(
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
    policy: &OriginPolicy,
) -> Route {
    let head = RequestHead {
        method,
        target,
        headers,
    };
    route(&head, policy)
}

fn status(r: &Route) -> u16 {
    match r {
        Route::Reject(resp) | Route::RefuseUpgrade(resp) => resp.status,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn message(r: &Route) -> String {
    let (Route::Reject(resp) | Route::RefuseUpgrade(resp)) = r else {
        panic!("expected a rejection, got {r:?}")
    };
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    v["error"]["message"].as_str().unwrap().to_owned()
}

fn without(name: &str) -> Vec<(&'static str, &'static [u8])> {
    upgrade_headers()
        .into_iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .collect()
}

fn replaced(name: &'static str, value: &'static [u8]) -> Vec<(&'static str, &'static [u8])> {
    let mut h = without(name);
    h.push((name, value));
    h
}

#[test]
fn header_lookup_is_case_insensitive_and_takes_the_first() {
    let headers: &[(&str, &[u8])] = &[("X-A", b"1"), ("x-a", b"2")];
    let head = RequestHead {
        method: "GET",
        target: "/",
        headers,
    };
    assert_eq!(head.header("X-a"), Some(&b"1"[..]));
    assert_eq!(head.header("x-b"), None);
    assert_eq!(head.headers_named("X-A").count(), 2);
}

#[test]
fn valid_upgrade_gives_the_key_and_handshake_fields() {
    let mut h = upgrade_headers();
    h.push(("User-Agent", b"test-agent/1"));
    h.push(("Authorization", b"Bearer tok.en.x"));
    let r = route_with("GET", "/ws?device=phone-1&deviceName=My+Phone", &h);
    let Route::Upgrade { handshake, key } = r else {
        panic!("{r:?}")
    };
    assert_eq!(key, KEY);
    assert_eq!(handshake.token.as_deref(), Some("tok.en.x"));
    assert_eq!(handshake.device.as_deref(), Some("phone-1"));
    assert_eq!(handshake.device_name.as_deref(), Some("My Phone"));
    assert_eq!(handshake.user_agent.as_deref(), Some("test-agent/1"));
}

#[test]
fn upgrade_tokens_are_case_insensitive_lists_over_several_lines() {
    let h: Vec<(&str, &[u8])> = vec![
        ("upgrade", b"h2c, WebSocket"),
        ("connection", b"keep-alive"),
        ("CONNECTION", b" x ,UPGRADE "),
        ("sec-websocket-key", b"  dGhlIHNhbXBsZSBub25jZQ== "),
        ("sec-websocket-version", b" 13"),
    ];
    let r = route_with("GET", "/ws", &h);
    assert!(
        matches!(&r, Route::Upgrade { key, .. } if key == KEY),
        "{r:?}"
    );
}

#[test]
fn absolute_form_upgrade_is_routed() {
    let r = route_with("GET", "http://example.com/ws?token=t", &upgrade_headers());
    assert!(
        matches!(r, Route::Upgrade { handshake, .. } if handshake.token.as_deref() == Some("t"))
    );
}

#[test]
fn ws_with_another_method_is_405_with_allow_get() {
    for method in ["POST", "HEAD", "PUT", "get"] {
        let r = route_with(method, "/ws", &upgrade_headers());
        assert_eq!(status(&r), 405, "{method}");
        let (Route::Reject(resp) | Route::RefuseUpgrade(resp)) = r else {
            unreachable!()
        };
        assert_eq!(resp.headers, vec![("Allow", "GET".to_owned())]);
    }
}

#[test]
fn ws_without_upgrade_headers_is_400() {
    let r = route_with("GET", "/ws", &[]);
    assert_eq!(status(&r), 400);
    assert!(message(&r).contains("Upgrade"));
    assert_eq!(status(&route_with("GET", "/ws", &without("Upgrade"))), 400);
    assert_eq!(
        status(&route_with("GET", "/ws", &replaced("Upgrade", b"h2c"))),
        400
    );
    assert_eq!(
        status(&route_with("GET", "/ws", &without("Connection"))),
        400
    );
    assert_eq!(
        status(&route_with(
            "GET",
            "/ws",
            &replaced("Connection", b"keep-alive")
        )),
        400
    );
    // `upgrades` is not the token `upgrade`.
    assert_eq!(
        status(&route_with(
            "GET",
            "/ws",
            &replaced("Connection", b"upgrades")
        )),
        400
    );
}

#[test]
fn ws_with_missing_or_malformed_key_is_400() {
    let r = route_with("GET", "/ws", &without("Sec-WebSocket-Key"));
    assert_eq!(status(&r), 400);
    assert_eq!(message(&r), "missing Sec-WebSocket-Key header");
    for bad in [
        &b""[..],
        b"short==",
        b"dGhlIHNhbXBsZSBub25jZQ",
        b"dGhlIHNhbXBsZSBub25jZQ=x",
        b"dGhlIHNhbXBsZSBub25j*Q==",
        b"dGhlIHNhbXBsZSBub25jZQ==dGhl",
        b"\xff\xfe",
    ] {
        let r = route_with("GET", "/ws", &replaced("Sec-WebSocket-Key", bad));
        assert_eq!(status(&r), 400, "{:?}", String::from_utf8_lossy(bad));
    }
    let mut h = upgrade_headers();
    h.push(("Sec-WebSocket-Key", KEY.as_bytes()));
    assert_eq!(status(&route_with("GET", "/ws", &h)), 400);
}

#[test]
fn ws_with_another_version_is_426_naming_13() {
    for h in [
        replaced("Sec-WebSocket-Version", b"8"),
        replaced("Sec-WebSocket-Version", b"13, 8"),
        without("Sec-WebSocket-Version"),
    ] {
        let r = route_with("GET", "/ws", &h);
        assert_eq!(status(&r), 426);
        let (Route::Reject(resp) | Route::RefuseUpgrade(resp)) = r else {
            unreachable!()
        };
        assert_eq!(
            resp.headers,
            vec![("Sec-WebSocket-Version", "13".to_owned())]
        );
    }
}

#[test]
fn ws_from_a_foreign_origin_is_403_and_without_origin_is_allowed() {
    let policy = OriginPolicy::parse("https://app.example.com").unwrap();
    let mut h = upgrade_headers();
    assert!(matches!(
        route_policy("GET", "/ws", &h, &policy),
        Route::Upgrade { .. }
    ));
    h.push(("Origin", b"https://APP.example.com:443"));
    assert!(matches!(
        route_policy("GET", "/ws", &h, &policy),
        Route::Upgrade { .. }
    ));
    h.push(("Origin", b"https://evil.example"));
    assert_eq!(status(&route_policy("GET", "/ws", &h, &policy)), 403);
    let h = replaced("Origin", b"null");
    assert_eq!(status(&route_policy("GET", "/ws", &h, &policy)), 403);
    assert!(matches!(
        route_policy("GET", "/ws", &h, &OriginPolicy::any()),
        Route::Upgrade { .. }
    ));
}

#[test]
fn handshake_errors_keep_their_status_and_message() {
    let r = route_with("GET", "/ws?device=a%20b", &upgrade_headers());
    assert_eq!(status(&r), 400);
    assert!(
        message(&r).starts_with("invalid device id"),
        "{}",
        message(&r)
    );
    let r = route_with(
        "GET",
        "/ws",
        &replaced("Authorization", b"Basic dXNlcjpwYXNz"),
    );
    assert_eq!(status(&r), 400);
}

#[test]
fn health_and_metrics_take_get_and_head_else_405() {
    assert_eq!(route_with("GET", "/healthz", &[]), Route::Health);
    assert_eq!(route_with("HEAD", "/healthz", &[]), Route::Health);
    assert_eq!(route_with("GET", "/metrics?x=1", &[]), Route::Metrics);
    assert_eq!(route_with("HEAD", "/metrics", &[]), Route::Metrics);
    for path in ["/healthz", "/metrics"] {
        let r = route_with("POST", path, &[]);
        assert_eq!(status(&r), 405);
        let (Route::Reject(resp) | Route::RefuseUpgrade(resp)) = r else {
            unreachable!()
        };
        assert_eq!(resp.headers, vec![("Allow", "GET, HEAD".to_owned())]);
    }
}

#[test]
fn api_paths_route_to_api_whatever_the_method() {
    for (m, t) in [
        ("POST", "/api/publish"),
        ("GET", "/api/presence/u1"),
        ("DELETE", "/api/nothing"),
        ("GET", "/api/stats?pretty"),
    ] {
        assert_eq!(route_with(m, t, &[]), Route::Api, "{m} {t}");
    }
}

#[test]
fn refusals_of_ws_are_refused_upgrades_and_other_refusals_are_not() {
    assert!(matches!(
        route_with("POST", "/ws", &upgrade_headers()),
        Route::RefuseUpgrade(r) if r.status == 405
    ));
    assert!(matches!(
        route_with("GET", "/ws?device=%20", &upgrade_headers()),
        Route::RefuseUpgrade(r) if r.status == 400
    ));
    assert!(matches!(
        route_with("GET", "/nope", &upgrade_headers()),
        Route::Reject(r) if r.status == 404
    ));
    assert!(matches!(
        route_with("POST", "/metrics", &[]),
        Route::Reject(r) if r.status == 405
    ));
}

#[test]
fn only_the_main_listener_speaks_tls() {
    assert!(Listener::Main {
        metrics: true,
        demo: false
    }
    .uses_tls());
    assert!(!Listener::Metrics.uses_tls());
}

#[test]
fn the_metrics_listener_serves_metrics_and_healthz_only_and_the_main_one_then_no_metrics() {
    let on = |listener, method, target| {
        let head = RequestHead {
            method,
            target,
            headers: &[],
        };
        route_on(listener, &head, &OriginPolicy::any())
    };
    let main = Listener::Main {
        metrics: false,
        demo: false,
    };
    assert_eq!(on(Listener::Metrics, "GET", "/metrics"), Route::Metrics);
    assert_eq!(on(Listener::Metrics, "HEAD", "/healthz"), Route::Health);
    for (listener, target) in [
        (Listener::Metrics, "/ws"),
        (Listener::Metrics, "/api/stats"),
        (main, "/metrics"),
        (main, "/metrics?x=1"),
    ] {
        let r = on(listener, "GET", target);
        assert_eq!(
            (status(&r), message(&r)),
            (404, "not found".into()),
            "{target}"
        );
    }
    assert_eq!(on(main, "GET", "/healthz"), Route::Health);
    assert_eq!(on(main, "GET", "/api/stats"), Route::Api);
}

#[test]
fn client_js_is_served_to_get_and_head_and_other_methods_are_405() {
    let Route::Asset(get) = route_with("GET", "/client.js?v=1", &[]) else {
        panic!("GET /client.js is an asset")
    };
    assert_eq!(get.status, 200);
    assert_eq!(get.content_type, "text/javascript; charset=utf-8");
    assert_eq!(&get.body[..], crate::http::CLIENT_JS.as_bytes());
    let header = |name: &str| {
        get.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("Cache-Control"), Some("public, max-age=300"));
    assert_eq!(header("Access-Control-Allow-Origin"), Some("*"));
    let text = String::from_utf8(get.to_bytes()).unwrap();
    assert!(
        text.ends_with(crate::http::CLIENT_JS),
        "GET writes the file"
    );
    assert!(
        text.contains(&format!("Content-Length: {}\r\n", get.body.len())),
        "{text:.200}"
    );

    let Route::Asset(head) = route_with("HEAD", "/client.js", &[]) else {
        panic!("HEAD /client.js is an asset")
    };
    let head_bytes = head.to_bytes();
    let get_bytes = get.to_bytes();
    assert_eq!(
        &get_bytes[..head_bytes.len()],
        &head_bytes[..],
        "HEAD answers GET's head"
    );
    assert!(head_bytes.ends_with(b"\r\n\r\n"), "and no body");

    for method in ["POST", "PUT", "DELETE", "get"] {
        let Route::Asset(r) = route_with(method, "/client.js", &[]) else {
            panic!("{method} /client.js")
        };
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.headers, vec![("Allow", "GET, HEAD".to_owned())]);
    }
    for other in [
        "/client.js/",
        "/Client.js",
        "/client.mjs",
        "/assets/client.js",
    ] {
        assert_eq!(status(&route_with("GET", other, &[])), 404, "{other}");
    }
}

fn on_main(demo: bool, method: &str, target: &str) -> Route {
    let head = RequestHead {
        method,
        target,
        headers: &[],
    };
    let listener = Listener::Main {
        metrics: true,
        demo,
    };
    route_on(listener, &head, &OriginPolicy::any())
}

fn header<'r>(r: &'r HttpResponse, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn admin_is_served_as_html_for_this_origin_only_and_never_framed() {
    for demo in [false, true] {
        let Route::Asset(get) = on_main(demo, "GET", "/admin?x=1") else {
            panic!("GET /admin is an asset")
        };
        assert_eq!(get.status, 200);
        assert_eq!(get.content_type, "text/html; charset=utf-8");
        assert_eq!(&get.body[..], crate::http::ADMIN_HTML.as_bytes());
        assert_eq!(header(&get, "Access-Control-Allow-Origin"), None);
        assert_eq!(header(&get, "X-Frame-Options"), Some("DENY"));
        let csp = header(&get, "Content-Security-Policy").expect("a CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        let Route::Asset(head) = on_main(demo, "HEAD", "/admin") else {
            panic!("HEAD /admin")
        };
        assert!(head.to_bytes().ends_with(b"\r\n\r\n"), "no body");
        let Route::Asset(post) = on_main(demo, "POST", "/admin") else {
            panic!("POST /admin")
        };
        assert_eq!(
            (post.status, post.headers),
            (405, vec![("Allow", "GET, HEAD".to_owned())])
        );
    }
    assert!(matches!(route_with("GET", "/admin", &[]), Route::Asset(r) if r.status == 200));
    for other in ["/admin/", "/Admin", "/admin.html", "/api/admin"] {
        let r = route_with("GET", other, &[]);
        assert!(!matches!(r, Route::Asset(_)), "{other}: {r:?}");
    }
}

#[test]
fn demo_is_served_only_when_the_listener_says_so() {
    for method in ["GET", "HEAD", "POST"] {
        let r = on_main(false, method, "/demo");
        assert_eq!(
            (status(&r), message(&r)),
            (404, "not found".into()),
            "{method}"
        );
    }
    assert_eq!(
        status(&route_with("GET", "/demo", &[])),
        404,
        "route() is the default listener: demo off"
    );
    let Route::Asset(get) = on_main(true, "GET", "/demo?token=x") else {
        panic!("GET /demo with demo on")
    };
    assert_eq!(
        (get.status, get.content_type),
        (200, "text/html; charset=utf-8")
    );
    assert_eq!(&get.body[..], crate::http::DEMO_HTML.as_bytes());
    assert!(header(&get, "Content-Security-Policy").is_some());
    let Route::Asset(post) = on_main(true, "POST", "/demo") else {
        panic!("POST /demo with demo on")
    };
    assert_eq!(post.status, 405);
    let on = Listener::Main {
        metrics: true,
        demo: true,
    };
    let head = RequestHead {
        method: "GET",
        target: "/demo",
        headers: &[],
    };
    assert_eq!(
        status(&route_on(Listener::Metrics, &head, &OriginPolicy::any())),
        404,
        "never on the metrics listener"
    );
    assert!(matches!(
        route_on(on, &head, &OriginPolicy::any()),
        Route::Asset(_)
    ));
}

#[test]
fn the_pages_use_the_api_and_the_client_they_document() {
    let admin = crate::http::ADMIN_HTML;
    for used in [
        "/api/stats",
        "/api/connections?",
        "/api/disconnect",
        "/api/publish",
        "sessionStorage",
        "apikey ",
    ] {
        assert!(admin.contains(used), "admin.html lacks `{used}`");
    }
    let demo = crate::http::DEMO_HTML;
    assert!(demo.contains(r#"import { connect } from "/client.js";"#));
    for page in [admin, demo] {
        assert!(page.starts_with("<!doctype html>"));
        assert!(
            !page.contains("<script src="),
            "no script of another origin"
        );
    }
}

#[test]
fn client_js_is_an_es_module_that_exports_its_api() {
    let js = crate::http::CLIENT_JS;
    for export in [
        "export function connect(",
        "export class Switchboard",
        "export class SwitchboardError extends Error",
    ] {
        assert!(js.contains(export), "client.js lacks `{export}`");
    }
    assert!(!js.contains("require("), "no CommonJS in an ES module");
}

#[test]
fn other_paths_are_404() {
    for t in [
        "/",
        "/api",
        "/ws/",
        "/WS",
        "/healthz/",
        "/favicon.ico",
        "*",
        "",
        "http://h",
    ] {
        let r = route_with("GET", t, &upgrade_headers());
        assert_eq!(status(&r), 404, "{t}");
        assert_eq!(message(&r), "not found");
    }
}

#[test]
fn path_of_strips_query_and_authority() {
    assert_eq!(path_of("/a?b"), "/a");
    assert_eq!(path_of("HTTP://h:1/x?y"), "/x");
    assert_eq!(path_of("https://h"), "");
    assert_eq!(path_of("é?"), "é");
}

proptest::proptest! {
    #[test]
    fn route_never_panics(
        method in "(GET|POST|HEAD|[A-Z]{0,3})",
        target in "(/ws|/api/|/healthz|http://h)?[?&=%+/a-zA-Z0-9é]{0,30}",
        values in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 6),
    ) {
        let names = ["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Origin", "Authorization"];
        let headers: Vec<(&str, &[u8])> = names.iter().copied().zip(values.iter().map(Vec::as_slice)).collect();
        let policy = OriginPolicy::parse("https://a.example").unwrap();
        let _ = route_policy(&method, &target, &headers, &policy);
    }
}

#[test]
fn a_listener_serves_exactly_its_paths_and_the_api_prefix() {
    let listeners = [false, true]
        .into_iter()
        .flat_map(|metrics| [false, true].map(|demo| Listener::Main { metrics, demo }))
        .chain([Listener::Metrics]);
    for listener in listeners {
        let on = |target| {
            let head = RequestHead {
                method: "GET",
                target,
                headers: &[],
            };
            route_on(listener, &head, &OriginPolicy::any())
        };
        let not_found = |r: &Route| matches!(r, Route::Reject(r) if r.status == 404);
        for path in listener.paths() {
            assert!(!not_found(&on(path)), "{listener:?} serves {path}");
        }
        for path in [
            "/ws",
            "/healthz",
            "/metrics",
            "/client.js",
            "/admin",
            "/demo",
        ] {
            if !listener.paths().contains(&path) {
                assert!(not_found(&on(path)), "{listener:?} does not serve {path}");
            }
        }
        assert_eq!(on("/api/stats") == Route::Api, listener.serves_api());
        assert!(not_found(&on("/elsewhere")), "{listener:?}");
    }
}
