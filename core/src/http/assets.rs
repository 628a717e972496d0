//! The static files the gateway serves, compiled into the binary: the browser client, the
//! admin page and the demo page.

use bytes::Bytes;

use crate::http::HttpResponse;

/// The browser client (`GET /client.js`): one ES module, no dependencies; its API is documented
/// in the file and in README.md, "Browser client".
pub const CLIENT_JS: &str = include_str!("assets/client.js");

/// The admin page (`GET /admin`): live counts, the connections with a disconnect button each,
/// and a publish form, over the HTTP API with the key the operator types in (kept in the tab's
/// `sessionStorage`). The page itself holds no data: it needs no key to load.
pub const ADMIN_HTML: &str = include_str!("assets/admin.html");

/// The demo page (`GET /demo`, served only with `--demo`): connects with the browser client and
/// a pasted token, subscribes, publishes, and shows messages and presence as they come.
pub const DEMO_HTML: &str = include_str!("assets/demo.html");

/// `Content-Security-Policy` of the pages: their own inline script and style, modules and
/// requests to this server only, and no framing by another site (the admin page has buttons
/// that act with the key).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `Cache-Control` of a static file: the file changes only with the server, so a browser may
/// keep it a few minutes (a deploy reaches every page within them).
const CACHE_CONTROL: &str = "public, max-age=300";

/// The answer to `method` on a static file: GET gets the file; HEAD the same head without the
/// body; any other method 405 with `Allow: GET, HEAD`.
///
/// Any origin may load it (`Access-Control-Allow-Origin: *`): a module script is fetched with
/// CORS, and the application's pages are usually served from another origin than Switchboard.
pub(crate) fn serve(method: &str, content_type: &'static str, body: &'static str) -> HttpResponse {
    serve_with(method, content_type, body, true)
}

fn serve_with(
    method: &str,
    content_type: &'static str,
    body: &'static str,
    any_origin: bool,
) -> HttpResponse {
    if !matches!(method, "GET" | "HEAD") {
        return HttpResponse::error(405, "method not allowed: use GET")
            .header("Allow", "GET, HEAD");
    }
    let mut response =
        HttpResponse::with_body(200, content_type, Bytes::from_static(body.as_bytes()))
            .header("Cache-Control", CACHE_CONTROL);
    if any_origin {
        response = response.header("Access-Control-Allow-Origin", "*");
    }
    response = response.header("X-Content-Type-Options", "nosniff");
    if method == "HEAD" {
        response.without_body()
    } else {
        response
    }
}

/// The answer to `method` on one of the HTML pages: as [`serve`] with `text/html`, but for this
/// origin only (no `Access-Control-Allow-Origin`), under [`PAGE_CSP`], and never framed.
pub(crate) fn serve_page(method: &str, body: &'static str) -> HttpResponse {
    let response = serve_with(method, "text/html; charset=utf-8", body, false);
    if response.status != 200 {
        return response;
    }
    response
        .header("Content-Security-Policy", PAGE_CSP)
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "no-referrer")
}
