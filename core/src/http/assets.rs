//! The static files the gateway serves, compiled into the binary: the browser client.

use bytes::Bytes;

use crate::http::HttpResponse;

/// The browser client (`GET /client.js`): one ES module, no dependencies; its API is documented
/// in the file and in README.md, "Browser client".
pub const CLIENT_JS: &str = include_str!("assets/client.js");

/// `Cache-Control` of a static file: the file changes only with the server, so a browser may
/// keep it a few minutes (a deploy reaches every page within them).
const CACHE_CONTROL: &str = "public, max-age=300";

/// The answer to `method` on a static file: GET gets the file; HEAD the same head without the
/// body; any other method 405 with `Allow: GET, HEAD`.
///
/// Any origin may load it (`Access-Control-Allow-Origin: *`): a module script is fetched with
/// CORS, and the application's pages are usually served from another origin than Switchboard.
pub(crate) fn serve(method: &str, content_type: &'static str, body: &'static str) -> HttpResponse {
    if !matches!(method, "GET" | "HEAD") {
        return HttpResponse::error(405, "method not allowed: use GET")
            .header("Allow", "GET, HEAD");
    }
    let response = HttpResponse::with_body(200, content_type, Bytes::from_static(body.as_bytes()))
        .header("Cache-Control", CACHE_CONTROL)
        .header("Access-Control-Allow-Origin", "*")
        .header("X-Content-Type-Options", "nosniff");
    if method == "HEAD" {
        response.without_body()
    } else {
        response
    }
}
