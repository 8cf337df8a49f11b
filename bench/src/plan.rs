//! What is measured: the servers and the scenarios of issue 7 (a to g)
//! and of the fan-out issue (h to l), in a full and in a smoke size.

use std::time::Duration;

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// TCP echo, no WebSocket, a tokio task per connection: the floor
    /// issue 7's targets are measured against.
    Raw,
    /// TCP echo, no WebSocket, on one mio event loop with the connections
    /// in a slab (`sockeye-bench-peer --peer raw-mio`): the floor for an
    /// event-loop server, below [`Server::Raw`].
    RawMio,
    /// TCP echo as one tokio task driving every socket through tokio's
    /// readiness API (`--peer raw-readiness`), a prototype to compare with
    /// [`Server::RawMio`].
    RawReadiness,
    /// `sockeye serve --echo --threads 1` (or `--broadcast` for fan-out).
    Sockeye,
    /// `sockeye serve --echo --threads 1 --runtime tokio`: sockeye's tokio
    /// front-end, where `sockeye serve` has `--runtime` (the harness leaves
    /// it out otherwise).
    SockeyeTokio,
    /// tokio-tungstenite.
    Tungstenite,
    /// fastwebsockets.
    Fastwebsockets,
    /// yawc.
    Yawc,
    /// Node's `ws`.
    Node,
}

impl Server {
    /// Every server, in table order.
    pub const ALL: [Server; 9] = [
        Server::Raw,
        Server::RawMio,
        Server::RawReadiness,
        Server::Sockeye,
        Server::SockeyeTokio,
        Server::Tungstenite,
        Server::Fastwebsockets,
        Server::Yawc,
        Server::Node,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Raw => "raw TCP",
            Server::RawMio => "raw TCP (mio)",
            Server::RawReadiness => "raw TCP (tokio readiness)",
            Server::Sockeye => "sockeye",
            Server::SockeyeTokio => "sockeye (tokio)",
            Server::Tungstenite => "tokio-tungstenite",
            Server::Fastwebsockets => "fastwebsockets",
            Server::Yawc => "yawc",
            Server::Node => "node ws",
        }
    }

    /// The name for `--servers`.
    pub fn key(self) -> &'static str {
        match self {
            Server::Raw => "raw",
            Server::RawMio => "raw-mio",
            Server::RawReadiness => "raw-readiness",
            Server::Sockeye => "sockeye",
            Server::SockeyeTokio => "sockeye-tokio",
            Server::Tungstenite => "tokio-tungstenite",
            Server::Fastwebsockets => "fastwebsockets",
            Server::Yawc => "yawc",
            Server::Node => "node",
        }
    }

    /// The server called `key`.
    pub fn from_key(key: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|server| server.key() == key)
    }

    /// A raw TCP echo (no WebSocket: the generator runs `--raw-echo`).
    pub fn is_raw(self) -> bool {
        matches!(self, Server::Raw | Server::RawMio | Server::RawReadiness)
    }

    /// `sockeye serve`, on either front-end.
    pub fn is_sockeye(self) -> bool {
        matches!(self, Server::Sockeye | Server::SockeyeTokio)
    }

    /// Another WebSocket implementation (what "the best peer" is chosen
    /// from).
    pub fn is_peer(self) -> bool {
        !self.is_raw() && !self.is_sockeye()
    }

    /// Whether it negotiates permessage-deflate.
    pub fn supports_deflate(self) -> bool {
        matches!(
            self,
            Server::Sockeye | Server::SockeyeTokio | Server::Yawc | Server::Node
        )
    }
}

/// What carries a room between sockeye nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backplane {
    /// `redis-server`, Redis pub/sub.
    Redis,
    /// `nats-server`, NATS subjects.
    Nats,
}

impl Backplane {
    /// Both.
    pub const ALL: [Backplane; 2] = [Backplane::Redis, Backplane::Nats];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Backplane::Redis => "Redis",
            Backplane::Nats => "NATS",
        }
    }

    /// The broker's program.
    pub fn program(self) -> &'static str {
        match self {
            Backplane::Redis => "redis-server",
            Backplane::Nats => "nats-server",
        }
    }

    /// The URL scheme of `sockeye serve --backplane`.
    pub fn scheme(self) -> &'static str {
        match self {
            Backplane::Redis => "redis",
            Backplane::Nats => "nats",
        }
    }
}

/// One server in one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The server.
    pub server: Server,
    /// With permessage-deflate.
    pub deflate: bool,
    /// Two sockeye nodes joined by this backplane (`None`: one node).
    pub backplane: Option<Backplane>,
    /// sockeye with every WebSocket a stream of an HTTP/2 connection
    /// (RFC 8441), [`HTTP2_STREAMS`] per connection.
    pub http2: bool,
}

/// WebSockets per HTTP/2 connection in the HTTP/2 variants (sockeye
/// serve's default stream limit).
pub const HTTP2_STREAMS: u32 = 100;

impl Variant {
    /// `server`, uncompressed, on one node.
    pub fn plain(server: Server) -> Variant {
        Variant {
            server,
            deflate: false,
            backplane: None,
            http2: false,
        }
    }

    /// The servers this variant runs (two nodes with a backplane).
    pub fn nodes(&self) -> u32 {
        if self.backplane.is_some() { 2 } else { 1 }
    }

    /// The name in tables.
    pub fn name(&self, workload: &Workload) -> String {
        if let Workload::CrossNode { .. } = workload {
            return match self.backplane {
                None if self.server == Server::Raw => "raw TCP broadcast, one node".to_owned(),
                None => "sockeye, one node".to_owned(),
                Some(backplane) => format!("sockeye, two nodes over {}", backplane.name()),
            };
        }
        if self.http2 {
            return format!("sockeye over HTTP/2 ({HTTP2_STREAMS} streams per connection)");
        }
        let base = match (self.server, workload) {
            (Server::Sockeye, Workload::Fanout { .. } | Workload::Subscribers { .. }) => {
                "sockeye --broadcast"
            }
            (Server::Raw, Workload::Fanout { .. } | Workload::Subscribers { .. }) => {
                "raw TCP broadcast"
            }
            (server, _) => server.name(),
        };
        match (self.deflate, self.server) {
            (true, _) => format!("{base}, deflate"),
            (false, Server::Raw) if workload.deflate() => format!("{base} (uncompressed)"),
            _ => base.to_owned(),
        }
    }
}

/// What the load generator does.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Echoes: `connections` each keeping `pipeline` messages in flight.
    Echo {
        /// Connections.
        connections: u32,
        /// Payload bytes.
        size: usize,
        /// Text (true) or binary.
        text: bool,
        /// Messages in flight per connection.
        pipeline: u32,
        /// JSON-like payloads (that compress a few times).
        json: bool,
        /// Offer permessage-deflate.
        deflate: bool,
    },
    /// Connections opened and held without traffic.
    Idle {
        /// Connections.
        connections: u32,
    },
    /// One publisher, `receivers` receivers, through `sockeye serve
    /// --broadcast` (or the raw TCP broadcast server), as fast as the
    /// window allows.
    Fanout {
        /// Receiving connections.
        receivers: u32,
        /// Payload bytes (JSON-like text).
        size: usize,
        /// How many messages the publisher may be ahead of the slowest
        /// receiver.
        window: u32,
    },
    /// `receivers` idle subscribers of one room, then a few publishes far
    /// apart: memory per subscriber, and the time one publish takes to
    /// reach them all.
    Subscribers {
        /// Subscribed connections.
        receivers: u32,
        /// Messages published, one per `1 / rate` seconds.
        publishes: u32,
        /// Publishes per second (the first one interval after every
        /// subscriber is connected, when the memory has been read).
        rate: f64,
    },
    /// `per_node` receivers on each node, one publisher on the first node
    /// publishing at a fixed rate: publish-to-delivery latency per node.
    CrossNode {
        /// Receivers per node.
        per_node: u32,
        /// Payload bytes (JSON-like text).
        size: usize,
        /// How many messages the publisher may be ahead of the slowest
        /// receiver.
        window: u32,
        /// Publishes per second.
        rate: f64,
    },
}

impl Workload {
    /// Whether compression is offered (the variants decide whether it is
    /// accepted).
    pub fn deflate(&self) -> bool {
        matches!(self, Workload::Echo { deflate: true, .. })
    }

    /// Connections the load generator opens (at most, over the variants).
    pub fn connections(&self) -> u32 {
        match self {
            Workload::Echo { connections, .. } | Workload::Idle { connections } => *connections,
            Workload::Fanout { receivers, .. } | Workload::Subscribers { receivers, .. } => {
                receivers + 1
            }
            Workload::CrossNode { per_node, .. } => 2 * per_node + 1,
        }
    }

    /// Receivers of a fan-out workload with `nodes` nodes.
    pub fn receivers(&self, nodes: u32) -> u32 {
        match self {
            Workload::Fanout { receivers, .. } | Workload::Subscribers { receivers, .. } => {
                *receivers
            }
            Workload::CrossNode { per_node, .. } => per_node * nodes,
            _ => 0,
        }
    }

    /// Whether the servers run `--broadcast`.
    pub fn is_fanout(&self) -> bool {
        matches!(
            self,
            Workload::Fanout { .. } | Workload::Subscribers { .. } | Workload::CrossNode { .. }
        )
    }
}

/// What a scenario's table leads with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Messages per second and CPU per message.
    Throughput,
    /// Bytes per second (GB/s) and CPU per message.
    Bandwidth,
    /// Round-trip percentiles.
    Latency,
    /// Memory per idle connection.
    Memory,
    /// Deliveries per second and CPU per delivery.
    Fanout,
    /// Memory per idle subscriber and the time to reach them all.
    Subscribers,
    /// Publish-to-delivery latency per node.
    CrossNode,
}

/// A target from issue 7 for sockeye in one scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Server CPU per message at most this many times raw TCP's.
    CpuVsRaw(f64),
    /// p99 round trip at most this many times raw TCP's.
    P99VsRaw(f64),
    /// At most this many KiB per idle connection.
    KibPerConnection(f64),
    /// At least this many times the best peer's messages per CPU second.
    BeatBestPeer(f64),
    /// At most this many µs of server CPU per delivery.
    CpuPerDelivery(f64),
    /// Receivers on the node the publisher is not on: p99 at most this
    /// many µs above the one-node p99, over every backplane.
    CrossNodeP99Added(f64),
    /// sockeye over HTTP/2: server CPU per message at most this many
    /// times sockeye's over HTTP/1.1 (one TCP connection per WebSocket).
    Http2CpuVsHttp1(f64),
    /// sockeye over HTTP/2: memory per idle WebSocket below sockeye's per
    /// idle TCP connection.
    Http2MemoryBelowHttp1,
    /// No target: reported only.
    Report,
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `a` to `m`.
    pub id: char,
    /// What it is, in a few words.
    pub title: String,
    /// What the load generator does.
    pub workload: Workload,
    /// What the table leads with.
    pub focus: Focus,
    /// The target for sockeye.
    pub target: Target,
    /// The servers, in table order.
    pub variants: Vec<Variant>,
}

/// How long runs last.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// How long idle connections are held once all are open.
    pub hold: Duration,
    /// How long after the last idle connection opened the server's memory
    /// is read.
    pub settle: Duration,
    /// Rounds of every scenario.
    pub rounds: usize,
}

impl Timing {
    /// The full run's (about 6 minutes in all).
    pub fn full() -> Timing {
        Timing {
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(2),
            hold: Duration::from_millis(1500),
            settle: Duration::from_millis(300),
            rounds: 3,
        }
    }

    /// The smoke run's: correctness only, figures meaningless.
    pub fn smoke() -> Timing {
        Timing {
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(100),
            hold: Duration::from_millis(300),
            settle: Duration::from_millis(50),
            rounds: 1,
        }
    }
}

fn every(servers: &[Server], deflate: bool) -> Vec<Variant> {
    servers
        .iter()
        .map(|&server| Variant {
            deflate,
            ..Variant::plain(server)
        })
        .collect()
}

/// The title of the idle-connections scenario (f) with `connections`.
pub fn idle_title(connections: u32) -> String {
    format!("{} idle connections: server memory", thousands(connections))
}

/// The title of the idle-subscribers scenario (j) with `receivers`.
pub fn subscribers_title(receivers: u32) -> String {
    format!(
        "{} idle subscribers of one room: memory per subscriber, time for one publish to \
         reach all",
        thousands(receivers)
    )
}

/// The title of a cross-node scenario (k, l).
fn cross_node_title(per_node: u32, rate: u32) -> String {
    format!(
        "two nodes: {} subscribers per node, {} publishes/s, 256 B: latency per node",
        thousands(per_node),
        thousands(rate)
    )
}

/// `100,000`.
fn thousands(value: u32) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Scenario {
    /// The idle-connections scenario (f) with `count` connections
    /// (`--idle-connections`).
    pub fn with_idle_connections(mut self, count: u32) -> Scenario {
        if self.id == 'f'
            && let Workload::Idle { connections } = &mut self.workload
        {
            *connections = count;
            self.title = idle_title(count);
        }
        self
    }

    /// The idle-subscribers scenario with fewer subscribers (where the
    /// machine cannot hold its full count).
    pub fn with_subscribers(mut self, count: u32) -> Scenario {
        if let Workload::Subscribers { receivers, .. } = &mut self.workload {
            *receivers = count;
            self.title = subscribers_title(count);
        }
        self
    }
}

/// The scenarios, full size or smoke size.
pub fn scenarios(smoke: bool) -> Vec<Scenario> {
    let all = every(&Server::ALL, false);
    // The event-loop floors (raw-mio, and the tokio-readiness prototype)
    // run in a, b, c and f, what an event-loop server is judged on; d and
    // e keep the tokio raw echo alone as their floor.
    let without_loop_floors: Vec<Variant> = all
        .iter()
        .copied()
        .filter(|variant| !matches!(variant.server, Server::RawMio | Server::RawReadiness))
        .collect();
    // Compression: the servers that support it, with raw TCP moving the
    // same (uncompressed) bytes for scale.
    let mut compressing = vec![Variant::plain(Server::Raw)];
    compressing.extend(
        Server::ALL
            .into_iter()
            .filter(|server| server.supports_deflate())
            .map(|server| Variant {
                deflate: true,
                ..Variant::plain(server)
            }),
    );
    // Fan-out: the raw TCP broadcast server (the floor) and sockeye, and
    // sockeye compressing where it is cheap to run.
    let broadcast = vec![Variant::plain(Server::Raw), Variant::plain(Server::Sockeye)];
    let mut broadcast_deflate = broadcast.clone();
    broadcast_deflate.push(Variant {
        deflate: true,
        ..Variant::plain(Server::Sockeye)
    });
    // The raw TCP broadcast server and sockeye on one node (the raw one
    // is the machine's own latency floor: its scheduling noise), then
    // two sockeye nodes over each backplane.
    let mut nodes = vec![Variant::plain(Server::Raw), Variant::plain(Server::Sockeye)];
    nodes.extend(Backplane::ALL.into_iter().map(|backplane| Variant {
        backplane: Some(backplane),
        ..Variant::plain(Server::Sockeye)
    }));
    // sockeye with a TCP connection per WebSocket against sockeye with
    // WebSockets as streams of HTTP/2 connections.
    let transports = vec![
        Variant::plain(Server::Sockeye),
        Variant {
            http2: true,
            ..Variant::plain(Server::Sockeye)
        },
    ];
    let pick = |full: u32, small: u32| if smoke { small } else { full };
    let echo = |connections, size, text, pipeline| Workload::Echo {
        connections,
        size,
        text,
        pipeline,
        json: false,
        deflate: false,
    };
    let mut scenarios = vec![
        Scenario {
            id: 'a',
            title: format!("{} connections, 20 B text, pipeline 8", pick(100, 4)),
            workload: echo(pick(100, 4), 20, true, 8),
            focus: Focus::Throughput,
            target: Target::CpuVsRaw(1.5),
            variants: all.clone(),
        },
        Scenario {
            id: 'b',
            title: format!("{} connections, 1 KiB binary, pipeline 8", pick(100, 4)),
            workload: echo(pick(100, 4), 1024, false, 8),
            focus: Focus::Throughput,
            target: Target::CpuVsRaw(1.5),
            variants: all.clone(),
        },
        Scenario {
            id: 'c',
            title: format!("{} connections, 64 KiB binary, pipeline 2", pick(10, 2)),
            workload: echo(pick(10, 2), 64 << 10, false, 2),
            focus: Focus::Throughput,
            target: Target::CpuVsRaw(1.4),
            variants: all.clone(),
        },
        Scenario {
            id: 'd',
            title: format!(
                "1 connection, {} binary, pipeline 2",
                if smoke { "1 MiB" } else { "16 MiB" }
            ),
            workload: echo(1, if smoke { 1 << 20 } else { 16 << 20 }, false, 2),
            focus: Focus::Bandwidth,
            target: Target::CpuVsRaw(1.4),
            variants: without_loop_floors.clone(),
        },
        Scenario {
            id: 'e',
            title: "1 connection, 32 B text, pipeline 1: round-trip latency".to_owned(),
            workload: echo(1, 32, true, 1),
            focus: Focus::Latency,
            target: Target::P99VsRaw(1.1),
            variants: without_loop_floors,
        },
        Scenario {
            id: 'f',
            title: idle_title(pick(10_000, 16)),
            workload: Workload::Idle {
                connections: pick(10_000, 16),
            },
            focus: Focus::Memory,
            target: Target::KibPerConnection(2.0),
            variants: all,
        },
        Scenario {
            id: 'g',
            title: format!(
                "permessage-deflate, {} connections, 1 KiB JSON-like text, pipeline 8",
                pick(100, 4)
            ),
            workload: Workload::Echo {
                connections: pick(100, 4),
                size: 1024,
                text: true,
                pipeline: 8,
                json: true,
                deflate: true,
            },
            focus: Focus::Throughput,
            target: Target::BeatBestPeer(1.25),
            variants: compressing,
        },
        Scenario {
            id: 'h',
            title: format!(
                "fan-out: {} subscribers, one publisher 64 messages ahead, 256 B JSON-like text",
                thousands(pick(1000, 10))
            ),
            workload: Workload::Fanout {
                receivers: pick(1000, 10),
                size: 256,
                window: 64,
            },
            focus: Focus::Fanout,
            target: Target::CpuPerDelivery(1.0),
            variants: broadcast_deflate,
        },
        Scenario {
            id: 'i',
            title: format!(
                "fan-out: {} subscribers, one publisher 64 messages ahead, 256 B JSON-like text",
                thousands(pick(10_000, 16))
            ),
            workload: Workload::Fanout {
                receivers: pick(10_000, 16),
                size: 256,
                window: 64,
            },
            focus: Focus::Fanout,
            target: Target::CpuPerDelivery(1.0),
            variants: broadcast.clone(),
        },
        Scenario {
            id: 'j',
            title: subscribers_title(pick(100_000, 16)),
            workload: Workload::Subscribers {
                receivers: pick(100_000, 16),
                publishes: pick(3, 2),
                // The first publish comes one interval after the last
                // subscriber, past the moment the memory is read.
                rate: if smoke { 5.0 } else { 1.0 },
            },
            focus: Focus::Subscribers,
            target: Target::Report,
            variants: broadcast,
        },
        Scenario {
            id: 'k',
            title: cross_node_title(pick(1000, 5), pick(1000, 200)),
            workload: Workload::CrossNode {
                per_node: pick(1000, 5),
                size: 256,
                window: 64,
                rate: f64::from(pick(1000, 200)),
            },
            focus: Focus::CrossNode,
            target: Target::CrossNodeP99Added(1000.0),
            variants: nodes.clone(),
        },
        Scenario {
            id: 'l',
            title: cross_node_title(pick(1000, 5), pick(10_000, 2000)),
            workload: Workload::CrossNode {
                per_node: pick(1000, 5),
                size: 256,
                window: 64,
                rate: f64::from(pick(10_000, 2000)),
            },
            focus: Focus::CrossNode,
            target: Target::Report,
            variants: nodes.clone(),
        },
        // k at a size a 2-core machine can serve: at a fixed rate each
        // delivery is about one write of its own (nothing piles up to be
        // corked), and 1,000 subscribers per node at 1,000/s would be two
        // million writes per second on the servers' one core.
        Scenario {
            id: 'm',
            title: format!(
                "{} (scaled to one core)",
                cross_node_title(pick(10, 3), pick(1000, 200))
            ),
            workload: Workload::CrossNode {
                per_node: pick(10, 3),
                size: 256,
                window: 64,
                rate: f64::from(pick(1000, 200)),
            },
            focus: Focus::CrossNode,
            target: Target::CrossNodeP99Added(1000.0),
            variants: nodes,
        },
        Scenario {
            id: 'n',
            title: format!(
                "HTTP/2 streams against TCP connections: {} WebSockets, 20 B text, pipeline 8",
                thousands(pick(1000, 4))
            ),
            workload: echo(pick(1000, 4), 20, true, 8),
            focus: Focus::Throughput,
            target: Target::Http2CpuVsHttp1(1.5),
            variants: transports.clone(),
        },
        Scenario {
            id: 'o',
            title: format!(
                "HTTP/2 streams against TCP connections: {} idle WebSockets, server memory",
                thousands(pick(1000, 16))
            ),
            workload: Workload::Idle {
                connections: pick(1000, 16),
            },
            focus: Focus::Memory,
            target: Target::Http2MemoryBelowHttp1,
            variants: transports,
        },
    ];
    if smoke {
        // The smoke run checks that every server echoes text and binary
        // frames with 7-bit and 64-bit lengths (64 KiB is past 16 bits),
        // compressed or not, and that every mode of the generator works;
        // b, d, e, l and m (k at another rate or size) add nothing to that.
        scenarios.retain(|scenario| !matches!(scenario.id, 'b' | 'd' | 'e' | 'l' | 'm'));
    }
    scenarios
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenarios_of_issue_7() {
        let full = scenarios(false);
        let ids: String = full.iter().map(|scenario| scenario.id).collect();
        assert_eq!(ids, "abcdefghijklmno");
        let n = &full[13];
        assert_eq!(n.target, Target::Http2CpuVsHttp1(1.5));
        let names: Vec<String> = n.variants.iter().map(|v| v.name(&n.workload)).collect();
        assert_eq!(
            names,
            [
                "sockeye",
                "sockeye over HTTP/2 (100 streams per connection)"
            ]
        );
        assert_eq!(
            full[5].workload,
            Workload::Idle {
                connections: 10_000
            }
        );
        assert_eq!(full[7].workload.connections(), 1001);
        assert_eq!(full[8].workload.connections(), 10_001);
        assert_eq!(full[9].workload.connections(), 100_001);
        assert_eq!(full[9].title, subscribers_title(100_000));
        assert!(full[9].title.starts_with("100,000 idle subscribers"));
        let scaled = full[9].clone().with_subscribers(19_000);
        assert_eq!(scaled.workload.receivers(1), 19_000);
        assert!(scaled.title.starts_with("19,000 idle"), "{}", scaled.title);
        let h = &full[7];
        assert_eq!(h.target, Target::CpuPerDelivery(1.0));
        let names: Vec<String> = h.variants.iter().map(|v| v.name(&h.workload)).collect();
        assert_eq!(
            names,
            [
                "raw TCP broadcast",
                "sockeye --broadcast",
                "sockeye --broadcast, deflate"
            ]
        );
        let k = &full[10];
        assert_eq!(k.workload.connections(), 2001);
        let names: Vec<String> = k.variants.iter().map(|v| v.name(&k.workload)).collect();
        assert_eq!(
            names,
            [
                "raw TCP broadcast, one node",
                "sockeye, one node",
                "sockeye, two nodes over Redis",
                "sockeye, two nodes over NATS"
            ]
        );
        assert_eq!(k.variants[2].nodes(), 2);
        assert_eq!(k.workload.receivers(2), 2000);
        let g = &full[6];
        assert!(g.workload.deflate());
        assert!(
            g.variants
                .iter()
                .all(|variant| variant.server.supports_deflate() || variant.server == Server::Raw)
        );
        assert_eq!(g.variants[1].name(&g.workload), "sockeye, deflate");
        assert_eq!(g.variants[0].name(&g.workload), "raw TCP (uncompressed)");
        let smoke = scenarios(true);
        assert!(smoke.len() < full.len());
        assert!(
            smoke
                .iter()
                .all(|scenario| scenario.workload.connections() <= 20)
        );
        for server in Server::ALL {
            assert_eq!(Server::from_key(server.key()), Some(server));
        }
    }

    #[test]
    fn the_event_loop_floors_and_sockeyes_two_front_ends() {
        let full = scenarios(false);
        let servers = |id: char| -> Vec<Server> {
            let scenario = full.iter().find(|scenario| scenario.id == id).unwrap();
            scenario
                .variants
                .iter()
                .map(|variant| variant.server)
                .collect()
        };
        for id in ['a', 'b', 'c', 'f'] {
            assert!(servers(id).contains(&Server::Raw), "({id})");
            assert!(servers(id).contains(&Server::RawMio), "({id})");
            assert!(servers(id).contains(&Server::RawReadiness), "({id})");
        }
        for id in ['d', 'e'] {
            assert!(servers(id).contains(&Server::Raw), "({id})");
            assert!(!servers(id).contains(&Server::RawMio), "({id})");
        }
        for id in "abcdefg".chars() {
            assert!(servers(id).contains(&Server::SockeyeTokio), "({id})");
        }
        for id in "hijklmno".chars() {
            assert!(!servers(id).iter().any(|server| matches!(
                server,
                Server::RawMio | Server::RawReadiness | Server::SockeyeTokio
            )));
        }
        let g = &full[6];
        let names: Vec<String> = g.variants.iter().map(|v| v.name(&g.workload)).collect();
        assert!(
            names.contains(&"sockeye (tokio), deflate".to_owned()),
            "{names:?}"
        );
        assert!(Server::RawMio.is_raw() && Server::RawReadiness.is_raw());
        assert!(!Server::RawMio.is_peer() && !Server::SockeyeTokio.is_peer());
        assert!(Server::SockeyeTokio.is_sockeye() && Server::SockeyeTokio.supports_deflate());
        assert_eq!(Server::from_key("raw-mio"), Some(Server::RawMio));
        assert_eq!(
            Server::from_key("sockeye-tokio"),
            Some(Server::SockeyeTokio)
        );
        let f = full[5].clone().with_idle_connections(100_000);
        assert_eq!(
            f.workload,
            Workload::Idle {
                connections: 100_000
            }
        );
        assert_eq!(f.title, "100,000 idle connections: server memory");
        // Only f takes the count.
        let o = full[14].clone().with_idle_connections(5);
        assert_eq!(o.workload.connections(), 1000);
    }
}
