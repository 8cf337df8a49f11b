//! Hostile `Origin` headers against a real sockeye server over loopback
//! (RFC 6455 sections 4.2.1 item 8 and 10.2, RFC 6454): the default
//! same-host policy and an allow-list, each refusing with 403 what it does
//! not allow, and never confused by case, trailing dots, ports or schemes.
//! The server is the tokio one or the event loop (`SOCKEYE_TEST_SERVER`,
//! see `common::front`).

mod common;

use common::front::{Front, front};
use common::hostile::*;
use sockeye::ServerBuilder;
use sockeye::proto::handshake::ServerHandshake;

/// The status a server built with `builder` answers to a request with
/// `Host: host` and one `Origin` header per entry of `origins`.
async fn status(builder: ServerBuilder, host: &str, origins: &[&str]) -> u16 {
    let mut server = TestServer::start(builder).await;
    let mut headers = valid_headers(host);
    for origin in origins {
        headers.push(("Origin", (*origin).to_owned()));
    }
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let answer = exchange(server.addr, &head("/chat", &borrowed)).await;
    if answer.status != 101 {
        assert_eq!(server.outcome().await.status(), Some(answer.status));
    }
    answer.status
}

async fn check(builder: impl Fn() -> ServerBuilder, host: &str, cases: &[(&str, u16)]) {
    for (origin, expected) in cases {
        let origins: &[&str] = if origin.is_empty() { &[] } else { &[origin] };
        let got = status(builder(), host, origins).await;
        assert_eq!(got, *expected, "Host {host:?}, Origin {origin:?}");
    }
}

/// What the default same-host rule answers where the server knows its
/// connections are plain `ws://`: the tokio `TestServer` accepts with
/// `ServerBuilder::accept`, which cannot tell TLS from the stream, so
/// either scheme passes; the event loop serves plain `ws://` only (as
/// `accept_tcp` without TLS), so the scheme is compared too
/// (`ServerHandshake::accept_secure`) and an `https://` page is another
/// origin.
fn same_host_status(origin: &str, unknown_scheme: u16) -> u16 {
    let https = origin
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    match front() {
        Front::EventLoop if https => 403,
        _ => unknown_scheme,
    }
}

/// [`check`] for the default same-host rule.
async fn check_same_host(host: &str, cases: &[(&str, u16)]) {
    let cases: Vec<(&str, u16)> = cases
        .iter()
        .map(|&(origin, expected)| (origin, same_host_status(origin, expected)))
        .collect();
    check(ServerBuilder::new, host, &cases).await;
}

/// The default policy: a browser page may connect only to the host it
/// came from (against cross-site WebSocket hijacking); clients that send
/// no Origin (not browsers) are let in.
#[tokio::test]
async fn default_policy_allows_only_the_same_host() {
    check_same_host(
        "ws.example",
        &[
            ("", 101),
            ("https://ws.example", 101),
            ("http://ws.example", 101),
            ("HTTPS://WS.EXAMPLE", 101),
            ("https://Ws.Example", 101),
            // A fully qualified name is the same host.
            ("https://ws.example.", 101),
            ("https://ws.example:443", 101),
            ("https://evil.example", 403),
            ("null", 403),
            ("NULL", 403),
            ("https://ws.example.evil.example", 403),
            ("https://evil-ws.example", 403),
            ("https://ws.example:8443", 403),
            ("https://ws.example:80", 403),
            ("http://ws.example:443", 403),
            ("https://ws.example/", 403),
            ("https://user@ws.example", 403),
            ("chrome-extension://ws.example", 403),
            ("ws.example", 403),
            ("", 101),
        ],
    )
    .await;
}

/// With a port in `Host`, the origin's effective port must be that port,
/// whichever scheme (the server cannot tell TLS from the request; the
/// event loop knows it is plain `ws://`, see [`same_host_status`]).
#[tokio::test]
async fn default_policy_compares_ports() {
    check_same_host(
        "ws.example:8080",
        &[
            ("http://ws.example:8080", 101),
            ("https://ws.example:8080", 101),
            ("http://WS.example.:8080", 101),
            ("http://ws.example", 403),
            ("https://ws.example", 403),
            ("http://ws.example:8081", 403),
            // RFC 6454's port is `*DIGIT`: leading zeros name the same
            // port (browsers never send them).
            ("http://ws.example:08080", 101),
            ("http://ws.example:80800", 403),
            ("http://evil.example:8080", 403),
        ],
    )
    .await;
}

/// An allow-list replaces the same-host rule: scheme, host and effective
/// port must match an entry; everything else is 403.
#[tokio::test]
async fn allow_list_refuses_everything_else() {
    let builder =
        || ServerBuilder::new().allow_origins(["https://app.example", "http://localhost:3000"]);
    check(
        builder,
        "ws.example",
        &[
            ("", 101),
            ("https://app.example", 101),
            ("https://app.example:443", 101),
            ("HTTPS://APP.EXAMPLE", 101),
            ("https://app.example.", 101),
            ("http://localhost:3000", 101),
            ("http://app.example", 403),
            ("https://app.example:8443", 403),
            ("https://evil.example", 403),
            ("https://app.example.evil.example", 403),
            ("https://evilapp.example", 403),
            ("https://ws.example", 403),
            ("null", 403),
            ("http://localhost", 403),
            ("http://localhost:3001", 403),
            ("https://localhost:3000", 403),
        ],
    )
    .await;
}

/// `null` (sandboxed frames, file: pages) is allowed only when listed.
#[tokio::test]
async fn null_origin_only_when_listed() {
    let builder = || ServerBuilder::new().allow_origins(["null"]);
    check(
        builder,
        "ws.example",
        &[("null", 101), ("Null", 101), ("https://ws.example", 403)],
    )
    .await;
}

/// A missing Origin is refused when the server requires one; two Origin
/// headers are malformed (RFC 6454 section 7.3) whatever the policy.
#[tokio::test]
async fn missing_and_repeated_origins() {
    let requiring = || {
        ServerBuilder::new().policy(
            ServerHandshake::new()
                .allow_origins(["https://app.example"])
                .require_origin(true),
        )
    };
    check(
        requiring,
        "ws.example",
        &[("", 403), ("https://app.example", 101)],
    )
    .await;
    for builder in [
        ServerBuilder::new(),
        ServerBuilder::new().allow_any_origin(),
        ServerBuilder::new().allow_origins(["https://app.example"]),
    ] {
        let got = status(
            builder,
            "ws.example",
            &["https://app.example", "https://app.example"],
        )
        .await;
        assert_eq!(got, 400);
    }
    let mixed = status(
        ServerBuilder::new().allow_origins(["https://app.example"]),
        "ws.example",
        &["https://app.example", "https://evil.example"],
    )
    .await;
    assert_eq!(mixed, 400);
}

/// `allow_any_origin` lets everything through, even `null`.
#[tokio::test]
async fn any_origin_allows_everything() {
    check(
        || ServerBuilder::new().allow_any_origin(),
        "ws.example",
        &[("https://evil.example", 101), ("null", 101), ("", 101)],
    )
    .await;
}
