//! `handshake`: arbitrary request targets and header lists into `Handshake::from_request` and
//! `http::route`, and arbitrary `--allowed-origins` / `--trusted-proxies` lists into their
//! parsers and policies. Nothing may panic; what comes out must obey PROTOCOL.md's rules.

use std::net::IpAddr;

use arbitrary::Arbitrary;
use switchboard_core::http::{
    body_length, route, with_head, HeadStatus, OriginPolicy, RequestHead, Route, TrustedProxies,
};
use switchboard_core::protocol::{validate_device_id, MAX_DEVICE_NAME_BYTES};
use switchboard_core::{Handshake, HandshakeError};

use crate::enc::{pick, Bytes, Encode, Encoder, Text};

const METHODS: [&str; 5] = ["GET", "POST", "HEAD", "get", ""];
const PREFIXES: [&str; 10] = [
    "/ws",
    "http://example.com/ws",
    "HTTPS://EXAMPLE.COM/ws",
    "http://example.com",
    "/ws/",
    "/WS",
    "/healthz",
    "/metrics",
    "/api/stats",
    "h\u{e9}://x/ws",
];
const KEYS: [&str; 9] = [
    "token",
    "device",
    "deviceName",
    "x",
    "tok%65n",
    "device%",
    "deviceName+",
    "",
    "%ZZ",
];
const VALUES: [&str; 12] = [
    "eyJ.a.b",
    "phone-1",
    "a%20b",
    "+",
    "%",
    "%4",
    "%C3%A9",
    "%FF",
    "bad device",
    "d:1._-X",
    "My%20Phone",
    "",
];
const HEADER_NAMES: [&str; 11] = [
    "Authorization",
    "user-agent",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Origin",
    "X-Forwarded-For",
    "AUTHORIZATION",
    "Host",
    "",
];
const HEADER_VALUES: [&str; 20] = [
    "Bearer abc.def.ghi",
    "bearer \t x",
    "Basic x",
    "Bearer",
    "Bearer a b",
    "websocket",
    "Upgrade",
    "keep-alive, Upgrade",
    "dGhlIHNhbXBsZSBub25jZQ==",
    "dGhlIHNhbXBsZSBub25jZQ=",
    "13",
    "8",
    "https://app.example.com",
    "null",
    "http://LOCALHOST:3000",
    "HTTPS://app.example.com:443",
    "1.2.3.4, 10.0.0.1",
    "::ffff:1.2.3.4, [::1]:80, 10.0.0.2:8080",
    "unknown, 10.0.0.3",
    "Mozilla/5.0 \u{e9}",
];
const ORIGIN_LISTS: [&str; 8] = [
    "*",
    "https://app.example.com,http://localhost:3000",
    " http://[::1]:8080 , https://a.b ",
    "",
    "https://a.com/",
    "*,https://a.com",
    "ftp://a.com",
    "http://a.com:99999",
];
const PROXY_LISTS: [&str; 8] = [
    "10.0.0.0/8",
    "::1/128, 10.0.0.1",
    "0.0.0.0/0,::/0",
    "",
    "1.2.3.4/33",
    "::ffff:10.0.0.0/104",
    "10.0.0.1/8",
    "fe80::/10, 192.168.0.0/16",
];

/// A string from a small list, or any.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Choice {
    Pick(u8),
    Raw(Text),
}

impl Choice {
    fn render(&self, list: &[&str]) -> String {
        match self {
            Choice::Pick(i) => pick(list, *i).to_owned(),
            Choice::Raw(t) => t.0.clone(),
        }
    }
}

/// A query parameter value.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Value {
    Choice(Choice),
    /// Every byte percent-encoded.
    Percent(Bytes),
    /// `len` copies of a character (device names over 128 bytes, ids over 64 chars).
    Long {
        multibyte: bool,
        len: u8,
    },
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Choice(c) => c.render(&VALUES),
            Value::Percent(b) => b.0.iter().map(|b| format!("%{b:02X}")).collect(),
            Value::Long { multibyte, len } => {
                let c = if *multibyte { "\u{e9}" } else { "a" };
                c.repeat(usize::from(*len))
            }
        }
    }
}

/// The request target.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Target {
    Raw(Text),
    Built {
        prefix: u8,
        params: Vec<(Choice, Option<Value>)>,
    },
}

impl Target {
    fn render(&self) -> String {
        match self {
            Target::Raw(t) => t.0.clone(),
            Target::Built { prefix, params } => {
                let mut s = pick(&PREFIXES, *prefix).to_owned();
                for (i, (k, v)) in params.iter().enumerate() {
                    s.push(if i == 0 { '?' } else { '&' });
                    s.push_str(&k.render(&KEYS));
                    if let Some(v) = v {
                        s.push('=');
                        s.push_str(&v.render());
                    }
                }
                s
            }
        }
    }
}

/// A header value.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum HeaderValue {
    Pick(u8),
    Raw(Bytes),
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Input {
    pub method: u8,
    /// Start with a valid set of upgrade headers, so that `route` reaches the handshake.
    pub upgrade_headers: bool,
    pub target: Target,
    pub headers: Vec<(Choice, HeaderValue)>,
    pub origins: Choice,
    pub proxies: Choice,
    pub peer: (u128, bool),
}

fn is_device_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b))
}

/// Checks a successful handshake against PROTOCOL.md's rules.
fn check_handshake(hs: &Handshake) {
    if let Some(d) = &hs.device {
        assert!(is_device_id(d), "device {d:?} breaks the device-id rules");
        assert!(validate_device_id(d).is_ok());
    }
    if let Some(n) = &hs.device_name {
        assert!(
            n.len() <= MAX_DEVICE_NAME_BYTES,
            "deviceName of {} bytes",
            n.len()
        );
    }
    if let Some(ua) = &hs.user_agent {
        assert!(ua.len() <= 512, "User-Agent of {} bytes", ua.len());
    }
    if let Some(t) = &hs.token {
        assert!(!t.is_empty(), "empty token");
    }
}

/// Drives one input; panics when an oracle fails.
pub fn run(input: &Input) {
    let target = input.target.render();
    let mut owned: Vec<(String, Vec<u8>)> = Vec::new();
    if input.upgrade_headers {
        for (n, v) in [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ] {
            owned.push((n.into(), v.into()));
        }
    }
    for (name, value) in input.headers.iter().take(128) {
        let value = match value {
            HeaderValue::Pick(i) => pick(&HEADER_VALUES, *i).as_bytes().to_vec(),
            HeaderValue::Raw(b) => b.0.clone(),
        };
        owned.push((name.render(&HEADER_NAMES), value));
    }
    let headers: Vec<(&str, &[u8])> = owned.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();

    // The handshake parser alone.
    let parsed = Handshake::from_request(&target, headers.iter().copied());
    match &parsed {
        Ok(hs) => check_handshake(hs),
        Err(e) => {
            let status = e.http_status();
            assert_eq!(
                status == 404,
                matches!(e, HandshakeError::NotFound),
                "{e:?}"
            );
            let _ = e.to_string();
        }
    }
    assert_eq!(
        parsed,
        Handshake::from_request(&target, headers.iter().copied()),
        "not deterministic"
    );

    // The origin policy.
    let list = input.origins.render(&ORIGIN_LISTS);
    let policy = match OriginPolicy::parse(&list) {
        Ok(policy) => {
            assert!(
                policy.allows(None),
                "a request without Origin must be allowed"
            );
            if policy.is_any() {
                assert_eq!(list.trim(), "*", "{list:?} parsed as any");
            } else {
                for entry in list.split(',').map(str::trim) {
                    assert!(
                        policy.allows(Some(entry.as_bytes())),
                        "{entry:?} of {list:?} is not allowed by its own policy"
                    );
                }
            }
            policy
        }
        Err(e) => {
            let _ = e.to_string();
            OriginPolicy::any()
        }
    };
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("origin"))
    {
        assert!(OriginPolicy::any().allows(Some(v)));
        let _ = policy.allows(Some(v));
    }

    // Routing.
    let method = pick(&METHODS, input.method);
    let head = RequestHead {
        method,
        target: &target,
        headers: &headers,
    };
    match route(&head, &policy) {
        Route::Upgrade { handshake, key } => {
            assert_eq!(method, "GET", "upgrade by {method}");
            assert_eq!(
                Ok(&handshake),
                parsed.as_ref(),
                "route and from_request disagree"
            );
            assert_eq!(key.len(), 24, "key {key:?}");
            assert!(key.ends_with("=="), "key {key:?}");
            for (_, v) in headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("origin"))
            {
                assert!(policy.allows(Some(v)), "upgrade from a refused origin");
            }
        }
        Route::RefuseUpgrade(resp) | Route::Reject(resp) => {
            assert!((400..600).contains(&resp.status), "status {}", resp.status);
            let bytes = resp.to_bytes();
            assert!(
                bytes.starts_with(b"HTTP/1.1 "),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Route::Asset(resp) => {
            assert!(
                matches!((method, resp.status), ("GET" | "HEAD", 200) | (_, 405)),
                "{method} on an asset: {}",
                resp.status
            );
        }
        Route::Health | Route::Metrics | Route::Api => {}
    }

    // The same request as bytes on the wire: finding and lending the head.
    let mut wire = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\nafter the head");
    for end in [wire.len(), wire.len() / 2] {
        let status = HeadStatus::of(&wire[..end]);
        let lent = with_head(&wire[..end], |head| {
            let _ = body_length(head);
            let _ = route(head, &policy);
            (head.method.len(), head.headers.len())
        });
        match status {
            HeadStatus::Complete(len) => {
                assert!(len <= end, "head length {len} past the {end} bytes read");
                let (method_len, count) = lent.expect("a complete head is lent");
                assert!(method_len > 0 && count <= switchboard_core::http::MAX_HEADERS);
            }
            other => {
                assert!(lent.is_none(), "an incomplete or refused head was lent");
                if other != HeadStatus::Partial {
                    assert!(other.rejection().is_some(), "{other:?} has no answer");
                }
            }
        }
    }

    // Trusted proxies and the client address.
    let (bits, v4) = input.peer;
    let peer = if v4 {
        IpAddr::from((bits as u32).to_be_bytes())
    } else {
        IpAddr::from(bits.to_be_bytes())
    };
    let xff: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, v)| *v)
        .collect();
    let plain = TrustedProxies::default().client_ip(peer, xff.iter().copied());
    assert_eq!(
        plain,
        peer.to_canonical(),
        "no trusted proxy: the peer is the client"
    );
    let list = input.proxies.render(&PROXY_LISTS);
    if let Ok(proxies) = TrustedProxies::parse(&list) {
        let ip = proxies.client_ip(peer, xff.iter().copied());
        assert_eq!(ip, ip.to_canonical(), "client_ip {ip} is not canonical");
        if !proxies.contains(peer.to_canonical()) {
            assert_eq!(
                ip,
                peer.to_canonical(),
                "an untrusted peer's XFF was believed"
            );
        }
        assert_eq!(
            proxies.contains(peer),
            proxies.contains(peer.to_canonical())
        );
    }
}

// ---- seeds --------------------------------------------------------------------------------

impl Encode for Choice {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Choice::Pick(i) => {
                e.tag(0, 2);
                i.encode(e);
            }
            Choice::Raw(t) => {
                e.tag(1, 2);
                t.encode(e);
            }
        }
    }
}

impl Encode for Value {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Value::Choice(c) => {
                e.tag(0, 3);
                c.encode(e);
            }
            Value::Percent(b) => {
                e.tag(1, 3);
                b.encode(e);
            }
            Value::Long { multibyte, len } => {
                e.tag(2, 3);
                multibyte.encode(e);
                len.encode(e);
            }
        }
    }
}

impl Encode for Target {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Target::Raw(t) => {
                e.tag(0, 2);
                t.encode(e);
            }
            Target::Built { prefix, params } => {
                e.tag(1, 2);
                prefix.encode(e);
                params.encode(e);
            }
        }
    }
}

impl Encode for HeaderValue {
    fn encode(&self, e: &mut Encoder) {
        match self {
            HeaderValue::Pick(i) => {
                e.tag(0, 2);
                i.encode(e);
            }
            HeaderValue::Raw(b) => {
                e.tag(1, 2);
                b.encode(e);
            }
        }
    }
}

impl Encode for u128 {
    fn encode(&self, e: &mut Encoder) {
        e.0.extend_from_slice(&self.to_le_bytes());
    }
}

impl Encode for Input {
    fn encode(&self, e: &mut Encoder) {
        self.method.encode(e);
        self.upgrade_headers.encode(e);
        self.target.encode(e);
        self.headers.encode(e);
        self.origins.encode(e);
        self.proxies.encode(e);
        self.peer.encode(e);
    }
}

fn param(k: u8, v: Value) -> (Choice, Option<Value>) {
    (Choice::Pick(k), Some(v))
}

fn val(i: u8) -> Value {
    Value::Choice(Choice::Pick(i))
}

/// Seed inputs: every parameter and header rule, every route, origin and proxy lists.
pub fn seeds() -> Vec<(String, Input)> {
    let base = |target: Target, headers: Vec<(u8, u8)>| Input {
        method: 0,
        upgrade_headers: true,
        target,
        headers: headers
            .into_iter()
            .map(|(n, v)| (Choice::Pick(n), HeaderValue::Pick(v)))
            .collect(),
        origins: Choice::Pick(1),
        proxies: Choice::Pick(0),
        peer: (0x0a00_0001, true),
    };
    let built = |prefix: u8, params: Vec<(Choice, Option<Value>)>| Target::Built { prefix, params };
    let mut out: Vec<(&str, Input)> = vec![
        (
            "full",
            base(
                built(
                    0,
                    vec![param(0, val(0)), param(1, val(1)), param(2, val(10))],
                ),
                vec![(0, 0), (1, 19), (6, 12), (7, 16), (7, 17)],
            ),
        ),
        (
            "absolute",
            base(built(1, vec![param(1, val(9))]), vec![(6, 15)]),
        ),
        ("absolute_upper", base(built(2, vec![]), vec![])),
        ("no_path", base(built(3, vec![]), vec![])),
        ("trailing_slash", base(built(4, vec![]), vec![])),
        ("healthz", base(built(6, vec![]), vec![])),
        ("metrics", base(built(7, vec![]), vec![])),
        ("api", base(built(8, vec![]), vec![])),
        ("non_ascii_scheme", base(built(9, vec![]), vec![])),
        ("bad_device", base(built(0, vec![param(1, val(8))]), vec![])),
        (
            "long_device",
            base(
                built(
                    0,
                    vec![param(
                        1,
                        Value::Long {
                            multibyte: false,
                            len: 65,
                        },
                    )],
                ),
                vec![],
            ),
        ),
        (
            "long_name",
            base(
                built(
                    0,
                    vec![param(
                        2,
                        Value::Long {
                            multibyte: true,
                            len: 65,
                        },
                    )],
                ),
                vec![],
            ),
        ),
        (
            "bad_percent",
            base(built(0, vec![param(0, val(5)), param(2, val(7))]), vec![]),
        ),
        (
            "percent_utf8",
            base(built(0, vec![param(2, val(6)), param(2, val(4))]), vec![]),
        ),
        (
            "empty_token",
            base(
                built(0, vec![param(0, val(11)), (Choice::Pick(0), None)]),
                vec![],
            ),
        ),
        (
            "encoded_key",
            base(
                built(
                    0,
                    vec![param(4, val(0)), param(8, val(0)), param(6, val(3))],
                ),
                vec![],
            ),
        ),
        (
            "percent_bytes",
            base(
                built(
                    0,
                    vec![param(2, Value::Percent(Bytes(vec![0xe2, 0x82, 0xac])))],
                ),
                vec![],
            ),
        ),
        (
            "bearer_variants",
            base(built(0, vec![]), vec![(8, 1), (0, 0)]),
        ),
        ("basic_auth", base(built(0, vec![]), vec![(0, 2)])),
        ("bearer_no_token", base(built(0, vec![]), vec![(0, 3)])),
        ("bearer_space", base(built(0, vec![]), vec![(0, 4)])),
        ("bad_origin", base(built(0, vec![]), vec![(6, 13)])),
        (
            "origin_ok_and_bad",
            base(built(0, vec![]), vec![(6, 12), (6, 14)]),
        ),
        ("xff_unparsable", base(built(0, vec![]), vec![(7, 18)])),
        ("ua_raw", {
            let mut i = base(built(0, vec![]), vec![]);
            i.headers
                .push((Choice::Pick(1), HeaderValue::Raw(Bytes(vec![0xff; 600]))));
            i
        }),
        (
            "raw_target",
            base(
                Target::Raw(Text::from("/ws?token=a&token=b&device=x")),
                vec![],
            ),
        ),
    ];
    let mut no_upgrade = base(built(0, vec![]), vec![(2, 5), (3, 7), (4, 9), (5, 11)]);
    no_upgrade.upgrade_headers = false;
    out.push(("bad_key_and_version", no_upgrade));
    let mut post = base(built(0, vec![]), vec![]);
    post.method = 1;
    out.push(("post", post));
    let mut head = base(built(6, vec![]), vec![]);
    head.method = 2;
    out.push(("head_healthz", head));
    for i in 0..ORIGIN_LISTS.len() as u8 {
        let mut inp = base(built(0, vec![]), vec![(6, 12)]);
        inp.origins = Choice::Pick(i);
        inp.proxies = Choice::Pick(i);
        inp.peer = (0xffff_0a00_0001, false);
        out.push((
            [
                "origins_0",
                "origins_1",
                "origins_2",
                "origins_3",
                "origins_4",
                "origins_5",
                "origins_6",
                "origins_7",
            ][usize::from(i)],
            inp,
        ));
    }
    out.into_iter().map(|(n, i)| (n.to_owned(), i)).collect()
}
