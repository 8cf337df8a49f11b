//! The testee as the event-loop server (`sockeye::event_loop`): an echo
//! [`Handler`] that sends every message back with `Socket::send` and
//! records each connection's ending into the same session registry the
//! tokio testee uses (keyed by the runner's address), so the runner's
//! checks about how the testee ended apply unchanged.
//!
//! - `Handler::close` ends a session as [`Ending::Echoed`] (with the
//!   engine's `Closed`), or as [`Ending::Failed`] when a `Socket::send`
//!   answered `Dropped` earlier: an echo server must not lose messages.
//! - `Handler::refused` ends it as [`Ending::Refused`].
//! - A connection dropped without `Handler::close` ends as
//!   [`Ending::Panicked`]: the loop does that when a callback panicked
//!   (it closes the connection with 1011 and goes on), and unwinding does
//!   it when a panic ends the loop's thread. (The panic's message is on
//!   stderr.)

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use sockeye::event_loop::{ConnId, EventLoop, Handler, Opening, Running, Socket};
use sockeye::proto::Config;
use sockeye::{Closed, Message, SendStatus, ServerBuilder};

use super::testee::{self, Ending, Server, Session, Sessions};

/// Loops (threads) per echo server: more than one, so that connections
/// are spread over loops by `SO_REUSEPORT` as in a deployment.
const LOOPS: usize = 2;

/// How long stopping a server's loops may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts an event-loop echo server with `config` on an ephemeral port of
/// 127.0.0.1; it runs until [`stop`] is called with the returned
/// [`Running`].
pub(crate) fn start(config: Config) -> io::Result<(Server, Running)> {
    start_with(ServerBuilder::new().config(config), |sessions| Echo {
        sessions,
    })
}

/// Starts an event-loop server with `server`'s policy and the handlers
/// `make` makes (one per loop, given the server's sessions).
fn start_with<H, F>(server: ServerBuilder, make: F) -> io::Result<(Server, Running)>
where
    H: Handler,
    F: Fn(Sessions) -> H + Send + Sync + 'static,
{
    let sessions = Sessions::default();
    let registry = Arc::clone(&sessions);
    let running = EventLoop::new(server)
        .threads(LOOPS)
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |_| {
            make(Arc::clone(&registry))
        })?;
    let server = Server {
        addr: running.local_addr(),
        sessions,
    };
    Ok((server, running))
}

/// Stops an event-loop server and waits (bounded) for its threads: an
/// error if a loop failed or panicked, or did not stop in time.
pub(crate) fn stop(running: Running) -> Result<(), String> {
    running.handle().stop();
    let (done, joined) = mpsc::channel();
    let joiner = std::thread::Builder::new()
        .name("conformance-loop-join".into())
        .spawn(move || {
            let _ = done.send(running.join());
        })
        .map_err(|error| format!("could not wait for the event loop: {error}"))?;
    match joined.recv_timeout(STOP_TIMEOUT) {
        Ok(Ok(())) => {
            let _ = joiner.join();
            Ok(())
        }
        Ok(Err(error)) => Err(format!("the event loop ended with an error: {error}")),
        // The thread is left behind: the process ends soon.
        Err(_) => Err(format!(
            "the event loop did not stop within {} s",
            STOP_TIMEOUT.as_secs()
        )),
    }
}

/// The echo application, one per loop.
struct Echo {
    sessions: Sessions,
}

/// One connection's record.
struct Conn {
    /// `None` once the ending is recorded.
    session: Option<Arc<Session>>,
    /// Messages received so far.
    messages: u64,
    /// The first echo `Socket::send` refused, described.
    lost: Option<String>,
}

impl Handler for Echo {
    type Data = Conn;

    fn open(&mut self, _socket: &mut Socket<'_>, opening: &Opening<'_>) -> Conn {
        Conn {
            session: Some(testee::session(&self.sessions, opening.remote_addr())),
            messages: 0,
            lost: None,
        }
    }

    fn message(&mut self, socket: &mut Socket<'_>, conn: &mut Conn, message: Message) {
        let index = conn.messages;
        conn.messages += 1;
        let len = message.len();
        if let SendStatus::Dropped(_) = socket.send(message)
            && conn.lost.is_none()
        {
            conn.lost = Some(format!(
                "Socket::send answered Dropped for the echo of message {index} \
                 ({len} bytes) with {} bytes buffered",
                socket.buffered_amount()
            ));
        }
    }

    fn close(&mut self, _id: ConnId, mut conn: Conn, closed: &Closed) {
        let ending = match conn.lost.take() {
            Some(lost) => Ending::Failed(format!("{lost}; then Handler::close with {closed:?}")),
            None => Ending::Echoed(format!("Handler::close with {closed:?}")),
        };
        if let Some(session) = conn.session.take() {
            session.finish(ending);
        }
    }

    fn refused(&mut self, remote: SocketAddr, error: &sockeye::Error) {
        testee::session(&self.sessions, remote).finish(Ending::Refused(error.to_string()));
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Reached only when the loop dropped the connection without
        // calling `Handler::close`.
        let Some(session) = self.session.take() else {
            return;
        };
        session.finish(Ending::Panicked(if std::thread::panicking() {
            "the event loop's thread panicked (its message is on stderr); \
             unwinding dropped this connection without Handler::close"
                .into()
        } else {
            "the loop dropped the connection without Handler::close, as it does \
             after a callback panicked (its message is on stderr)"
                .into()
        }));
    }
}

#[cfg(test)]
mod tests {
    //! The event-loop target must be able to fail: a lost echo, a
    //! refusal, a panicking callback (in `message`, and in `close`), and a
    //! client-role case each fail the case, saying why. (A loop ended by a
    //! panic would fail the factory's `stop`; no callback's panic ends a
    //! loop any more, so that path has no self-test.)

    use super::*;
    use crate::cases;
    use crate::report::{CaseResult, run_all};
    use crate::target::Settings;
    use crate::tcp::{FrontEnd, Tcp};
    use sockeye_proto::Role;

    /// A factory whose server for the default settings is `server` with
    /// the handlers `make` makes.
    fn factory<H, F>(server: ServerBuilder, make: F) -> Tcp
    where
        H: Handler,
        F: Fn(Sessions) -> H + Send + Sync + 'static,
    {
        let tcp = Tcp::with_front_end(FrontEnd::EventLoop, Tcp::TIMING).expect("factory");
        let (server, running) = start_with(server, make).expect("event loop");
        tcp.servers
            .lock()
            .unwrap()
            .push((Settings::default(), Arc::new(server)));
        tcp.loops.lock().unwrap().push(running);
        tcp
    }

    /// Runs `id` in `role`; returns its result.
    fn run(tcp: &Tcp, id: &str, role: Role) -> CaseResult {
        let case = cases::all()
            .into_iter()
            .find(|case| case.id == id)
            .expect("the case");
        run_all(&[case], &[role], tcp, |_| {}).remove(0)
    }

    fn assert_caught(result: &CaseResult, expected: &str) {
        assert!(!result.passed(), "{} passed", result.name());
        let problems = result.problems.join("; ");
        assert!(
            problems.contains(expected),
            "{}: expected {expected:?} in {problems}",
            result.name()
        );
    }

    #[test]
    fn the_echo_server_passes() {
        let mut tcp = factory(ServerBuilder::new(), |sessions| Echo { sessions });
        for id in ["1.1.2", "2.6", "5.7", "6.4.1", "7.3.3", "7.11.1"] {
            let result = run(&tcp, id, Role::Server);
            assert!(result.passed(), "{}", result.line());
        }
        tcp.stop().expect("the loops stop");
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
        // refused.
        let server = ServerBuilder::new().config(Config::new().max_buffered_bytes(1));
        let tcp = factory(server, |sessions| Doubling(Echo { sessions }));
        let result = run(&tcp, "1.1.2", Role::Server);
        assert_caught(&result, "the testee failed its echo application");
        assert_caught(&result, "Socket::send answered Dropped");
    }

    #[test]
    fn a_refusal_is_caught() {
        let server = ServerBuilder::new().allowed_hosts(["example.org"]);
        let tcp = factory(server, |sessions| Echo { sessions });
        let result = run(&tcp, "1.1.1", Role::Server);
        assert_caught(&result, "the opening handshake failed");
        assert_caught(&result, "the testee said");
    }

    /// Panics on the first message, or in `close`.
    struct Panicky {
        echo: Echo,
        in_close: bool,
    }

    impl Handler for Panicky {
        type Data = Conn;

        fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> Conn {
            self.echo.open(socket, opening)
        }

        fn message(&mut self, socket: &mut Socket<'_>, conn: &mut Conn, message: Message) {
            assert!(self.in_close, "the handler panics in message, as asked");
            self.echo.message(socket, conn, message);
        }

        fn close(&mut self, id: ConnId, conn: Conn, closed: &Closed) {
            assert!(!self.in_close, "the handler panics in close, as asked");
            self.echo.close(id, conn, closed);
        }
    }

    #[test]
    fn a_panicking_callback_is_caught() {
        // The loop survives it: it closes the connection with 1011 and
        // drops it without `Handler::close`.
        let mut tcp = factory(ServerBuilder::new(), |sessions| Panicky {
            echo: Echo { sessions },
            in_close: false,
        });
        let result = run(&tcp, "1.1.2", Role::Server);
        assert_caught(&result, "the testee panicked");
        tcp.stop().expect("the loops stop");
    }

    #[test]
    fn a_panic_in_close_is_caught_and_the_loop_goes_on() {
        // `close` is guarded too: the connection's data is dropped while
        // unwinding (the session ends as panicked) and the loop lives on.
        let mut tcp = factory(ServerBuilder::new(), |sessions| Panicky {
            echo: Echo { sessions },
            in_close: true,
        });
        let result = run(&tcp, "1.1.2", Role::Server);
        assert_caught(&result, "the testee panicked");
        tcp.stop().expect("the loops stop: none died");
    }

    #[test]
    fn the_client_role_is_refused() {
        let tcp = Tcp::with_front_end(FrontEnd::EventLoop, Tcp::TIMING).expect("factory");
        let result = run(&tcp, "1.1.1", Role::Client);
        assert_caught(&result, "the event loop is a server only");
    }
}
