//! The deflate testee as the event-loop server (`sockeye::event_loop`):
//! one server per case, with the case's `ServerBuilder::deflate` policy
//! and config, and an echo [`Handler`] that reports what the tokio
//! testee's echo task reports (`super::tcp::echo`): the engine's
//! negotiated parameters when the connection opens, its `Closed` when it
//! ends, and problems besides the wire.
//!
//! An echo the loop refuses (`Socket::send` answers `Dropped`) is a
//! problem: an echo server must not lose messages. So is a refusal, and a
//! connection dropped without `Handler::close` (after a callback
//! panicked, or by a panic that ends the loop's thread).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use sockeye::event_loop::{ConnId, EventLoop, Handler, Opening, Running, Socket};
use sockeye::{Closed, Message, SendStatus, ServerBuilder};

use super::tcp::Shared;
use super::testee::{TesteeEnding, TesteeSetup};

/// How long connecting may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the case's event-loop server (one loop) on an ephemeral port of
/// 127.0.0.1 reporting into `shared`, and connects to it. The server runs
/// until `crate::tcp::event_loop::stop`.
pub(super) fn start(
    setup: &TesteeSetup,
    shared: Arc<Shared>,
) -> Result<(TcpStream, Running), String> {
    start_with(setup, shared, |shared| Echo { shared })
}

/// [`start`] with the handler `make` makes (given `shared`).
fn start_with<H, F>(
    setup: &TesteeSetup,
    shared: Arc<Shared>,
    make: F,
) -> Result<(TcpStream, Running), String>
where
    H: Handler,
    F: Fn(Arc<Shared>) -> H + Send + Sync + 'static,
{
    let server = ServerBuilder::new()
        .deflate(setup.policy)
        .config(setup.config.clone());
    let running = EventLoop::new(server)
        .threads(1)
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |_| {
            make(Arc::clone(&shared))
        })
        .map_err(|error| format!("could not start the event-loop server: {error}"))?;
    match TcpStream::connect_timeout(&running.local_addr(), OPEN_TIMEOUT) {
        Ok(stream) => Ok((stream, running)),
        Err(error) => {
            let _ = crate::tcp::event_loop::stop(running);
            Err(format!("could not connect to the testee server: {error}"))
        }
    }
}

/// The echo application of one case's server.
struct Echo {
    shared: Arc<Shared>,
}

/// The case's connection.
struct Conn {
    /// `None` once its end is reported.
    shared: Option<Arc<Shared>>,
    /// Messages received so far.
    messages: u64,
}

impl Handler for Echo {
    type Data = Conn;

    fn open(&mut self, socket: &mut Socket<'_>, _opening: &Opening<'_>) -> Conn {
        self.shared.lock().params = Some(socket.connection().deflate_params());
        Conn {
            shared: Some(Arc::clone(&self.shared)),
            messages: 0,
        }
    }

    fn message(&mut self, socket: &mut Socket<'_>, conn: &mut Conn, message: Message) {
        let index = conn.messages;
        conn.messages += 1;
        let len = message.len();
        if let SendStatus::Dropped(_) = socket.send(message) {
            self.shared.lock().problems.push(format!(
                "the testee's Socket::send answered Dropped for the echo of message {index} \
                 ({len} bytes) with {} bytes buffered",
                socket.buffered_amount()
            ));
        }
    }

    fn close(&mut self, _id: ConnId, mut conn: Conn, closed: &Closed) {
        if let Some(shared) = conn.shared.take() {
            shared.lock().ending = Some(TesteeEnding::from_closed(closed));
            shared.finish();
        }
    }

    fn refused(&mut self, _remote: SocketAddr, error: &sockeye::Error) {
        self.shared
            .lock()
            .problems
            .push(format!("the testee server's handshake failed: {error}"));
        self.shared.finish();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Reached only when the loop dropped the connection without
        // calling `Handler::close`.
        let Some(shared) = self.shared.take() else {
            return;
        };
        let problem = if std::thread::panicking() {
            "the testee's event loop panicked (its message is on stderr)"
        } else {
            "the testee's event loop dropped the connection without Handler::close, \
             as it does after a callback panicked (its message is on stderr)"
        };
        shared.lock().problems.push(problem.into());
        shared.finish();
    }
}

#[cfg(test)]
mod tests {
    //! The deflate event-loop target must be able to fail: a lost echo
    //! and an engine without the negotiated extension are caught, and a
    //! client-role case fails, saying why.

    use std::time::{Duration, Instant};

    use sockeye_proto::Role;

    use super::*;
    use crate::deflate::tcp::TcpTestee;

    use crate::deflate::report::select;
    use crate::deflate::run::{run_case, testee_setup};
    use crate::deflate::tcp::{FrontEnd, Tcp};
    use crate::deflate::testee::{DeflateTargets, Read, Testee, TesteeSetup};

    /// The event-loop targets with each case's setup changed by `change`.
    struct Changed(Tcp, fn(&mut TesteeSetup));

    impl DeflateTargets for Changed {
        fn name(&self) -> &str {
            "the event loop, set up wrong"
        }

        fn start(&self, role: Role, setup: &TesteeSetup) -> Result<Box<dyn Testee>, String> {
            let mut setup = setup.clone();
            (self.1)(&mut setup);
            self.0.start(role, &setup)
        }
    }

    fn targets() -> Tcp {
        Tcp::with_front_end(FrontEnd::EventLoop).expect("targets")
    }

    /// Runs `id` in `role` against `targets`; returns the problems.
    fn problems(id: &str, role: Role, targets: &dyn DeflateTargets) -> String {
        let case = select(&[id.to_string()]).remove(0);
        run_case(&case, role, targets).problems.join("; ")
    }

    #[test]
    fn the_echo_server_passes() {
        for id in ["12.1.4", "13.2.5", "13.7.2"] {
            let problems = problems(id, Role::Server, &targets());
            assert!(problems.is_empty(), "{id}: {problems}");
        }
    }

    /// Sends each message once more before echoing it.
    struct Doubling(Echo);

    impl Handler for Doubling {
        type Data = Conn;

        fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> Conn {
            self.0.open(socket, opening)
        }

        fn message(&mut self, socket: &mut Socket<'_>, conn: &mut Conn, message: Message) {
            let _ = socket.send(message.clone());
            self.0.message(socket, conn, message);
        }

        fn close(&mut self, id: ConnId, conn: Conn, closed: &Closed) {
            self.0.close(id, conn, closed);
        }
    }

    #[test]
    fn a_dropped_echo_is_caught() {
        // One byte may be buffered: the echo after the extra copy is
        // refused. Played by hand rather than by a case, whose runner
        // would wait its whole patience for the missing echo.
        let mut setup = testee_setup(&select(&["12.1.4".to_string()])[0], Role::Server);
        setup.config = setup.config.clone().max_buffered_bytes(1);
        let shared = Arc::new(Shared::default());
        let (stream, running) = start_with(&setup, Arc::clone(&shared), |shared| {
            Doubling(Echo { shared })
        })
        .expect("testee");
        let mut testee = TcpTestee::new(stream, shared).expect("testee");
        testee.server = Some(running);
        let mut bytes = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
        // A masked (key 0) Text "hi", then a masked Close 1000.
        bytes.extend_from_slice(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
        bytes.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
        testee.write(&bytes).expect("write");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while testee.read(&mut out, Duration::from_millis(100)) != Read::Eof {
            assert!(Instant::now() < deadline, "the testee did not close");
        }
        let report = testee.finish();
        let problems = report.problems.join("; ");
        assert!(
            problems.contains("Socket::send answered Dropped for the echo of message 0"),
            "{problems}"
        );
        assert_eq!(report.ending.map(|ending| ending.code), Some(1000));
    }

    #[test]
    fn the_engine_parameters_are_reported() {
        // Declining the offer: the runner sees the answer without the
        // extension, and the engine reported without it.
        let declining = Changed(targets(), |setup| {
            setup.policy = setup.policy.enabled(false);
        });
        let problems = problems("12.1.4", Role::Server, &declining);
        assert!(
            problems.contains("the testee's engine did not enable permessage-deflate"),
            "{problems}"
        );
    }

    #[test]
    fn the_client_role_is_refused() {
        let problems = problems("12.1.4", Role::Client, &targets());
        assert!(
            problems.contains("the event loop is a server only"),
            "{problems}"
        );
    }
}
