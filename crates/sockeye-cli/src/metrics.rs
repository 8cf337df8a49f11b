//! `sockeye serve --metrics ADDR`: the server's counters for Prometheus,
//! in its text exposition format (version 0.0.4), at `GET /metrics` on a
//! listener of its own (plain HTTP; keep it on loopback or a private
//! network).
//!
//! Nothing is counted here: each scrape reads the library's snapshots,
//! [`ServerBuilder::stats`], [`Hub::stats`] and [`Hub::backplane_status`],
//! through a `prometheus-client` collector. The connections count in
//! their own plain fields and add to the server's counters in batches
//! (see `sockeye::stats`), so metrics cost the message path nothing more.
//!
//! | series | type | from |
//! |---|---|---|
//! | `sockeye_connections_open` | gauge | WebSockets open now |
//! | `sockeye_connections_total` | counter | WebSockets accepted |
//! | `sockeye_connections_refused_total{reason}` | counter | refused requests, by [`RefusalReason::label`] |
//! | `sockeye_connections_closed_total{how="clean\|abnormal"}` | counter | ended WebSockets |
//! | `sockeye_connections_shed_total` | counter | closed with 1013 by `--memory-budget` |
//! | `sockeye_messages_total{direction="in\|out"}` | counter | data messages |
//! | `sockeye_bytes_total{direction="in\|out"}` | counter | WebSocket bytes (frames, not the handshake or TLS) |
//! | `sockeye_memory_in_use_bytes` | gauge | what connections hold against the memory budget |
//! | `sockeye_hub_*` | counters, gauges | broadcast mode: the hub's [`HubStats`](sockeye::hub::HubStats) |
//! | `sockeye_backplane_*` | counters, gauges | when a backplane is configured: its [`BackplaneStatus`](sockeye::hub::BackplaneStatus) |

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sockeye::hub::Hub;
use sockeye::proto::handshake::RequestParser;
use sockeye::{RefusalReason, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::failure::Failure;

/// How long a scraper may take to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// A `--metrics` value: `IP:PORT`, `localhost:PORT`, or a bare `PORT` on
/// 127.0.0.1.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(format!(
        "{text:?}: expected IP:PORT (such as 127.0.0.1:9090), localhost:PORT or PORT"
    ))
}

/// The metrics listener, bound (so that a taken address fails the start
/// before anything is served) and not yet serving.
pub struct Listener {
    listener: TcpListener,
    local: SocketAddr,
}

/// Listens on `address`.
pub async fn bind(address: SocketAddr) -> Result<Listener, Failure> {
    let cannot =
        |error: std::io::Error| format!("cannot listen on {address} for --metrics: {error}");
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| Failure::unreachable(cannot(error)))?;
    let local = listener
        .local_addr()
        .map_err(|error| Failure::failed(cannot(error)))?;
    Ok(Listener { listener, local })
}

impl Listener {
    /// Serves `/metrics` from now on, in a task of its own, and prints
    /// where. `hub` is the broadcast mode's hub (`None` in echo mode,
    /// where it carries nothing).
    pub fn serve(self, server: ServerBuilder, hub: Option<Hub>) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Snapshots { server, hub }));
        note!("sockeye: metrics on http://{}/metrics", self.local);
        tokio::spawn(accept_loop(self.listener, Arc::new(registry)));
    }
}

/// Answers scrapes until the runtime ends.
async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let registry = registry.clone();
                tokio::spawn(async move {
                    let served =
                        tokio::time::timeout(REQUEST_TIMEOUT, answer(tcp, &registry)).await;
                    if !matches!(served, Ok(Ok(()))) {
                        debug!("{peer}: metrics request failed or timed out");
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors, most likely.
                debug!("metrics: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request and answers it: the exposition for `GET /metrics`
/// (and `HEAD`), 404 or 405 otherwise, then closes.
async fn answer(mut tcp: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut parser = RequestParser::new().max_head_size(MAX_HEAD);
    let mut buffer = [0u8; 2048];
    let request = loop {
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        match parser.parse(&buffer[..read]) {
            Ok(Some(parsed)) => break parsed.head,
            Ok(None) => {}
            Err(error) => {
                sockeye::answer_refusal(&mut tcp, &error).await;
                return Ok(());
            }
        }
    };
    let method = request.method();
    let (status, body) = if request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "try /metrics\n".to_owned())
    } else if method != Method::GET && method != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned())
    } else {
        (StatusCode::OK, exposition(registry))
    };
    let content_type = if status == StatusCode::OK {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if method != Method::HEAD {
        response.push_str(&body);
    }
    tcp.write_all(response.as_bytes()).await?;
    tcp.shutdown().await
}

/// The registry in the Prometheus text format.
fn exposition(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    // Writing to a String fails only if a collector does.
    if prometheus_client::encoding::prometheus_text::encode(&mut text, registry).is_err() {
        debug!("metrics: encoding failed");
    }
    text
}

/// Reads the library's snapshots at each scrape.
#[derive(Debug)]
struct Snapshots {
    server: ServerBuilder,
    hub: Option<Hub>,
}

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let out = &mut encoder;
        let stats = self.server.stats();
        gauge(
            out,
            "sockeye_connections_open",
            "WebSocket connections open now.",
            stats.open as u64,
        )?;
        counter(
            out,
            "sockeye_connections",
            "WebSocket connections accepted (answered 101).",
            stats.accepted,
        )?;
        counters(
            out,
            "sockeye_connections_refused",
            "Requests refused, by reason: connection_limit, address_limit and draining (503), \
             host (421), origin (403), application (the server's own answer, such as 404 for \
             an unknown room), bad_request (400, 405, 426, 431).",
            "reason",
            RefusalReason::ALL.map(|reason| (reason.label(), stats.refused(reason))),
        )?;
        counters(
            out,
            "sockeye_connections_closed",
            "WebSocket connections ended: clean (closing handshake completed) or abnormal.",
            "how",
            [
                ("clean", stats.closed_clean),
                ("abnormal", stats.closed_abnormal),
            ],
        )?;
        counter(
            out,
            "sockeye_connections_shed",
            "WebSocket connections closed with 1013 by the memory budget.",
            stats.shed,
        )?;
        counters(
            out,
            "sockeye_messages",
            "Data messages received from clients (in) and sent to them (out).",
            "direction",
            [("in", stats.messages_in), ("out", stats.messages_out)],
        )?;
        counters(
            out,
            "sockeye_bytes",
            "WebSocket bytes read from clients (in) and written to them (out): frames as on \
             the wire, without the HTTP handshake or TLS.",
            "direction",
            [("in", stats.bytes_in), ("out", stats.bytes_out)],
        )?;
        gauge(
            out,
            "sockeye_memory_in_use_bytes",
            "Bytes connections hold against the memory budget.",
            self.server.memory_in_use() as u64,
        )?;
        if let Some(hub) = &self.hub {
            encode_hub(out, hub)?;
        }
        Ok(())
    }
}

/// The hub's counters and sizes, and its backplane's if it has one.
fn encode_hub(out: &mut DescriptorEncoder, hub: &Hub) -> Result<(), fmt::Error> {
    let stats = hub.stats();
    for (name, help, value) in [
        (
            "sockeye_hub_published",
            "Messages published on this node.",
            stats.published,
        ),
        (
            "sockeye_hub_received_remote",
            "Messages received from other nodes through the backplane.",
            stats.received_remote,
        ),
        (
            "sockeye_hub_queued",
            "Messages queued for subscribers (one per subscriber reached).",
            stats.queued,
        ),
        (
            "sockeye_hub_delivered",
            "Messages handed to subscribers' connections.",
            stats.delivered,
        ),
        (
            "sockeye_hub_kicked",
            "Subscribers closed because their queue was full.",
            stats.kicked,
        ),
        (
            "sockeye_hub_stalled",
            "Subscribers closed because a write made no progress.",
            stats.stalled,
        ),
        (
            "sockeye_hub_invalid_envelopes",
            "Envelopes from the backplane that did not decode.",
            stats.invalid_envelopes,
        ),
    ] {
        counter(out, name, help, value)?;
    }
    counters(
        out,
        "sockeye_hub_dropped",
        "Messages dropped, by reason: full (drop-oldest or drop-newest), slow (lost with a \
         subscriber closed for being slow), closed (queued when the connection ended), \
         backplane (other nodes did not get them).",
        "reason",
        [
            ("full", stats.dropped_full),
            ("slow", stats.dropped_slow),
            ("closed", stats.dropped_closed),
            ("backplane", stats.dropped_backplane),
        ],
    )?;
    for (name, help, value) in [
        (
            "sockeye_hub_queue_depth",
            "Messages queued now, over all subscribers.",
            stats.queue_depth_total,
        ),
        (
            "sockeye_hub_queue_depth_max",
            "The longest subscriber queue now.",
            stats.queue_depth_max,
        ),
        (
            "sockeye_hub_topics",
            "Topics (rooms) with at least one subscriber.",
            stats.topics,
        ),
        (
            "sockeye_hub_subscribers",
            "Subscribers attached.",
            stats.subscribers,
        ),
        (
            "sockeye_hub_subscriptions",
            "Subscriptions: (subscriber, topic) pairs.",
            stats.subscriptions,
        ),
    ] {
        gauge(out, name, help, value as u64)?;
    }
    let Some(backplane) = hub.backplane_status() else {
        return Ok(());
    };
    gauge(
        out,
        "sockeye_backplane_connected",
        "1 while connected to the backplane's messaging system, 0 otherwise.",
        u64::from(backplane.connected),
    )?;
    for (name, help, value) in [
        (
            "sockeye_backplane_reconnects",
            "Connections to the messaging system made after the first one.",
            backplane.reconnects,
        ),
        (
            "sockeye_backplane_published",
            "Envelopes handed to the messaging system.",
            backplane.published,
        ),
        (
            "sockeye_backplane_received",
            "Envelopes received from the messaging system.",
            backplane.received,
        ),
        (
            "sockeye_backplane_dropped",
            "Envelopes dropped on the way out (not connected, queue full, failed send).",
            backplane.dropped,
        ),
    ] {
        counter(out, name, help, value)?;
    }
    gauge(
        out,
        "sockeye_backplane_subscriptions",
        "Topics subscribed on the messaging system now.",
        backplane.subscriptions as u64,
    )
}

/// One counter, without labels (`_total` is appended to `name`).
fn counter(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(out.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter with one label, a sample per value of it.
fn counters<const N: usize>(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: [(&str, u64); N],
) -> Result<(), fmt::Error> {
    let mut family = out.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (label_value, value) in values {
        let labels = [(label, label_value)];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge, without labels.
fn gauge(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(out.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// The answer to a scrape, for the unit tests.
#[cfg(test)]
fn scrape(server: ServerBuilder, hub: Option<Hub>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshots { server, hub }));
    exposition(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("127.0.0.1:9090"),
            Ok("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(parse_address("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert_eq!(parse_address("9090"), Ok("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(
            parse_address("localhost:9090"),
            Ok("127.0.0.1:9090".parse().unwrap())
        );
        assert!(parse_address("metrics.example:9090").is_err());
        assert!(parse_address("127.0.0.1").is_err());
        assert!(parse_address("127.0.0.1:99999").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn the_exposition_names_every_series_once() {
        let server = ServerBuilder::new();
        server.record_refusal(RefusalReason::Application);
        let hub = Hub::builder().build();
        let text = scrape(server, Some(hub));
        for line in [
            "# TYPE sockeye_connections_open gauge",
            "sockeye_connections_open 0",
            "# TYPE sockeye_connections_total counter",
            "sockeye_connections_refused_total{reason=\"application\"} 1",
            "sockeye_connections_refused_total{reason=\"host\"} 0",
            "sockeye_messages_total{direction=\"in\"} 0",
            "sockeye_bytes_total{direction=\"out\"} 0",
            "sockeye_hub_dropped_total{reason=\"backplane\"} 0",
            "# TYPE sockeye_hub_queue_depth_max gauge",
            "sockeye_hub_subscribers 0",
        ] {
            assert!(text.lines().any(|found| found == line), "{line} in\n{text}");
        }
        // No backplane: no backplane series.
        assert!(!text.contains("sockeye_backplane"));
        let mut types: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .collect();
        let count = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), count, "a family twice:\n{text}");
    }

    /// A backplane that only reports a status.
    struct Reporting;

    impl sockeye::hub::Backplane for Reporting {
        fn start(&self, _link: sockeye::hub::BackplaneLink) {}
        fn publish(&self, _topic: &str, _envelope: bytes::Bytes) -> bool {
            false
        }
        fn subscribe(&self, _topic: &str) {}
        fn unsubscribe(&self, _topic: &str) {}
        fn status(&self) -> sockeye::hub::BackplaneStatus {
            sockeye::hub::BackplaneStatus::new(true, 2, 30, 40, 5, 6)
        }
    }

    #[test]
    fn a_backplane_adds_its_state() {
        let hub = Hub::builder().backplane(Reporting).build();
        let text = scrape(ServerBuilder::new(), Some(hub));
        for line in [
            "# TYPE sockeye_backplane_connected gauge",
            "sockeye_backplane_connected 1",
            "sockeye_backplane_reconnects_total 2",
            "sockeye_backplane_published_total 30",
            "sockeye_backplane_received_total 40",
            "sockeye_backplane_dropped_total 5",
            "sockeye_backplane_subscriptions 6",
        ] {
            assert!(text.lines().any(|found| found == line), "{line} in\n{text}");
        }
    }
}
