//! What is measured: the servers and the scenarios of issue 7, in a full
//! and in a smoke size.

use std::time::Duration;

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// TCP echo, no WebSocket: the floor.
    Raw,
    /// `sockeye serve --echo --threads 1` (or `--broadcast` for fan-out).
    Sockeye,
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
    pub const ALL: [Server; 6] = [
        Server::Raw,
        Server::Sockeye,
        Server::Tungstenite,
        Server::Fastwebsockets,
        Server::Yawc,
        Server::Node,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Raw => "raw TCP",
            Server::Sockeye => "sockeye",
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
            Server::Sockeye => "sockeye",
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

    /// Another WebSocket implementation (what "the best peer" is chosen
    /// from).
    pub fn is_peer(self) -> bool {
        !matches!(self, Server::Raw | Server::Sockeye)
    }

    /// Whether it negotiates permessage-deflate.
    pub fn supports_deflate(self) -> bool {
        matches!(self, Server::Sockeye | Server::Yawc | Server::Node)
    }
}

/// One server in one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The server.
    pub server: Server,
    /// With permessage-deflate.
    pub deflate: bool,
}

impl Variant {
    /// The name in tables.
    pub fn name(&self, workload: &Workload) -> String {
        let base = match (self.server, workload) {
            (Server::Sockeye, Workload::Fanout { .. }) => "sockeye --broadcast",
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
    /// --broadcast`.
    Fanout {
        /// Receiving connections.
        receivers: u32,
        /// Payload bytes (JSON-like text).
        size: usize,
        /// How many messages the publisher may be ahead of the slowest
        /// receiver.
        window: u32,
    },
}

impl Workload {
    /// Whether compression is offered (the variants decide whether it is
    /// accepted).
    pub fn deflate(&self) -> bool {
        matches!(self, Workload::Echo { deflate: true, .. })
    }

    /// Connections the load generator opens.
    pub fn connections(&self) -> u32 {
        match self {
            Workload::Echo { connections, .. } | Workload::Idle { connections } => *connections,
            Workload::Fanout { receivers, .. } => receivers + 1,
        }
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
    /// No target: reported only.
    Report,
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `a` to `h`.
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
        .map(|&server| Variant { server, deflate })
        .collect()
}

/// The scenarios, full size or smoke size.
pub fn scenarios(smoke: bool) -> Vec<Scenario> {
    let all = every(&Server::ALL, false);
    // Compression: the servers that support it, with raw TCP moving the
    // same (uncompressed) bytes for scale.
    let mut compressing = vec![Variant {
        server: Server::Raw,
        deflate: false,
    }];
    compressing.extend(
        Server::ALL
            .into_iter()
            .filter(|server| server.supports_deflate())
            .map(|server| Variant {
                server,
                deflate: true,
            }),
    );
    let broadcast = vec![
        Variant {
            server: Server::Sockeye,
            deflate: false,
        },
        Variant {
            server: Server::Sockeye,
            deflate: true,
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
            variants: all.clone(),
        },
        Scenario {
            id: 'e',
            title: "1 connection, 32 B text, pipeline 1: round-trip latency".to_owned(),
            workload: echo(1, 32, true, 1),
            focus: Focus::Latency,
            target: Target::P99VsRaw(1.1),
            variants: all.clone(),
        },
        Scenario {
            id: 'f',
            title: format!("{} idle connections: server memory", pick(10_000, 20)),
            workload: Workload::Idle {
                connections: pick(10_000, 20),
            },
            focus: Focus::Memory,
            target: Target::KibPerConnection(2.0),
            variants: all.clone(),
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
                "fan-out: {} clients, one publisher, 256 B JSON-like text",
                pick(1000, 10)
            ),
            workload: Workload::Fanout {
                receivers: pick(1000, 10),
                size: 256,
                window: 8,
            },
            focus: Focus::Fanout,
            target: Target::Report,
            variants: broadcast,
        },
    ];
    if smoke {
        // The smoke run checks that every server echoes text and binary
        // frames with 7-bit and 64-bit lengths (64 KiB is past 16 bits),
        // compressed or not, and that every mode of the generator works;
        // b, d and e add nothing to that.
        scenarios.retain(|scenario| !matches!(scenario.id, 'b' | 'd' | 'e'));
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
        assert_eq!(ids, "abcdefgh");
        assert_eq!(
            full[5].workload,
            Workload::Idle {
                connections: 10_000
            }
        );
        assert_eq!(full[7].workload.connections(), 1001);
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
}
