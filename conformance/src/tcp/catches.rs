//! The pacing over TCP must neither pass a faulty testee nor fail a slow
//! correct one. A hand-driven testee (a sockeye-proto `Connection` on a
//! thread, behind a real loopback socket) reacts to each read after a
//! delay shorter than the quiet period, correctly or with one fault; the
//! cases that guard the rule the fault breaks must catch it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sockeye_proto::{CloseCode, Config, Connection, Event, Role, State};

use super::peer::Peer;
use super::upgrade;
use crate::case::Case;
use crate::cases;
use crate::report::{CaseResult, role_name, run_all};
use crate::target::{Settings, Target, TargetFactory, Timing};
use crate::wire::Rng;

const TIMING: Timing = Timing {
    quiet: Duration::from_millis(25),
    patience: Duration::from_millis(200),
};

/// How long the testee takes to react to each read: well within `quiet`.
const DELAY: Duration = Duration::from_millis(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// None: a correct, slowish testee.
    Healthy,
    /// Processes every read only when the next one arrives.
    LateInput,
    /// Closes (1000) on its own a few milliseconds after its first echo.
    PrematureClose,
    /// Closes the transport as soon as the connection leaves `Open`,
    /// without waiting for the peer's EOF (wrong for a client).
    ClosesWithoutWaiting,
    /// Never closes the transport.
    KeepsTransportOpen,
}

/// The testee's loop: read, wait `DELAY`, feed the engine, echo, write.
fn testee(
    mut stream: TcpStream,
    leftover: &[u8],
    role: Role,
    config: Config,
    fault: Fault,
    stop: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut connection = Connection::new(role, config);
    let (mut held, mut output) = (Vec::new(), Vec::new());
    let mut buffer = vec![0u8; 1 << 16];
    // Bytes read with the handshake count as the first read.
    let mut first = Some(leftover.to_vec()).filter(|bytes| !bytes.is_empty());
    let (mut echoed, mut closed_early) = (false, false);
    loop {
        let read = match first.take() {
            Some(bytes) => {
                buffer[..bytes.len()].copy_from_slice(&bytes);
                bytes.len()
            }
            None => match stream.read(&mut buffer) {
                Ok(read) => read,
                Err(_) => return,
            },
        };
        std::thread::sleep(DELAY);
        let input = &buffer[..read];
        if fault == Fault::LateInput {
            let previous = std::mem::replace(&mut held, input.to_vec());
            connection.receive_data(&previous);
        } else {
            connection.receive_data(input);
        }
        if read == 0 {
            connection.receive_data(&std::mem::take(&mut held));
            connection.receive_eof();
        }
        while let Some(event) = connection.next_event() {
            if let Event::Message(message) = event {
                echoed |= connection.send(message).is_ok();
            }
        }
        connection.data_to_send(&mut output);
        if fault == Fault::PrematureClose && echoed && !closed_early {
            closed_early = true;
            let _ = stream.write_all(&output);
            output.clear();
            std::thread::sleep(DELAY);
            let _ = connection.send_close(CloseCode::NORMAL, "");
            connection.data_to_send(&mut output);
        }
        if stream.write_all(&output).is_err() {
            return;
        }
        output.clear();
        let close = match fault {
            Fault::KeepsTransportOpen => false,
            Fault::ClosesWithoutWaiting => connection.state() != State::Open,
            _ => connection.should_close_transport(),
        };
        if close {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if read == 0 {
            // EOF read and the transport kept open: wait for the runner.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            return;
        }
    }
}

struct HandDriven(Fault);

struct HandTarget {
    peer: Option<Peer>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TargetFactory for HandDriven {
    fn name(&self) -> &str {
        "hand-driven testee over TCP"
    }

    fn start(&self, role: Role, settings: &Settings) -> Box<dyn Target> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("address");
        let connecting = std::thread::spawn(move || TcpStream::connect(addr));
        let (accepted, _) = listener.accept().expect("accept");
        let connected = connecting.join().expect("connect thread").expect("connect");
        let (mut ours, theirs) = match role {
            Role::Server => (connected, accepted),
            Role::Client => (accepted, connected),
        };
        let (fault, config) = (self.0, settings.config());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let host = addr.to_string();
        let thread = std::thread::spawn(move || {
            let mut theirs = theirs;
            let opened = match role {
                Role::Server => upgrade::as_server(&mut theirs).map(|()| Vec::new()),
                Role::Client => upgrade::as_client(&mut theirs, &host, &mut Rng::new(1)),
            };
            let leftover = opened.expect("the testee's handshake");
            testee(theirs, &leftover, role, config, fault, &stopped);
        });
        let leftover = match role {
            Role::Server => upgrade::as_client(&mut ours, &addr.to_string(), &mut Rng::new(2)),
            Role::Client => upgrade::as_server(&mut ours).map(|()| Vec::new()),
        }
        .expect("the runner's handshake");
        Box::new(HandTarget {
            peer: Some(Peer::new(ours, leftover).expect("peer")),
            stop,
            thread: Some(thread),
        })
    }
}

impl HandTarget {
    fn peer(&mut self) -> &mut Peer {
        self.peer.as_mut().expect("until drop")
    }
}

impl Target for HandTarget {
    fn deliver(&mut self, bytes: &[u8]) {
        self.peer().deliver(bytes);
    }

    fn deliver_eof(&mut self) {
        self.peer().deliver_eof();
    }

    fn collect(&mut self, out: &mut Vec<u8>) {
        self.peer().collect(out);
    }

    fn has_closed(&self) -> bool {
        self.peer.as_ref().is_some_and(Peer::has_closed)
    }

    fn timing(&self) -> Option<Timing> {
        Some(TIMING)
    }

    fn wait(&mut self, timeout: Duration) -> bool {
        self.peer().wait(timeout)
    }
}

impl Drop for HandTarget {
    fn drop(&mut self) {
        drop(self.peer.take());
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pick(ids: &[&str]) -> Vec<Case> {
    let all = cases::all();
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|case| case.id == *id)
                .unwrap_or_else(|| panic!("no case {id}"))
                .clone()
        })
        .collect()
}

fn lines(results: &[CaseResult]) -> String {
    results
        .iter()
        .map(CaseResult::line)
        .collect::<Vec<_>>()
        .join("\n")
}

const BOTH: &[Role] = &[Role::Server, Role::Client];

/// Cases of every ending and chunking: whole, per frame, per byte, fail
/// windows, answered closes, the peer's EOF.
const SENTINELS: &[&str] = &[
    "1.1.2", "1.3.2", "1.5.5", "2.6", "2.13", "3.1", "5.7", "6.4.1", "6.4.3", "6.4.6", "6.24.40",
    "7.3.3", "7.10.4", "7.11.1", "7.11.4",
];

#[test]
fn a_slow_correct_testee_passes() {
    let results = run_all(&pick(SENTINELS), BOTH, &HandDriven(Fault::Healthy), |_| {});
    assert!(
        results.iter().all(CaseResult::passed),
        "{}",
        lines(&results)
    );
}

#[test]
fn faults_are_caught_over_tcp() {
    let sentinels: [(Fault, &[Role], &[&str]); 5] = [
        (
            Fault::LateInput,
            BOTH,
            &["2.6", "5.7", "6.4.1", "6.4.3", "6.24.40", "7.10.4"],
        ),
        (Fault::PrematureClose, BOTH, &["1.3.2", "2.13"]),
        (
            Fault::ClosesWithoutWaiting,
            &[Role::Client],
            &["1.1.2", "1.3.2", "7.3.3"],
        ),
        (
            Fault::KeepsTransportOpen,
            BOTH,
            &["3.1", "6.4.3", "7.11.1", "7.11.4"],
        ),
        (Fault::KeepsTransportOpen, &[Role::Server], &["7.3.3"]),
    ];
    let mut missed = Vec::new();
    for (fault, roles, ids) in sentinels {
        for result in run_all(&pick(ids), roles, &HandDriven(fault), |_| {}) {
            if result.passed() {
                missed.push(format!(
                    "{fault:?} not caught by {} {}",
                    role_name(result.role),
                    result.id
                ));
            }
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
