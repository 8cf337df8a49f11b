//! Helpers for the end-to-end tests: run the real `sockeye` binary, read
//! its output line by line with time limits, and always end and reap the
//! processes a test started (by their own handle, on every path, panics
//! included).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sockeye");

/// The longest any single wait in these tests lasts.
pub const WAIT: Duration = Duration::from_secs(10);

/// Proxy variables that would send test traffic elsewhere.
const PROXY_VARIABLES: [&str; 12] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// `sockeye ARGS` with a clean environment for the test.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    command.env_remove("RUST_LOG");
    command
}

/// A running `sockeye`, killed and reaped when dropped.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<String>,
    /// Every stderr line so far, for failure messages.
    stderr_seen: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `sockeye ARGS` with stdin, stdout and stderr piped.
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sockeye binary starts");
        let stdin = child.stdin.take();
        let (out_lines, stdout) = channel();
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if out_lines.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let (err_lines, stderr) = channel();
        let stderr_seen = Arc::new(Mutex::new(Vec::new()));
        let seen = stderr_seen.clone();
        let err = BufReader::new(child.stderr.take().expect("piped stderr"));
        std::thread::spawn(move || {
            for line in err.lines() {
                let Ok(line) = line else { return };
                seen.lock().unwrap().push(line.clone());
                if err_lines.send(line).is_err() {
                    return;
                }
            }
        });
        Proc {
            child,
            stdin,
            stdout,
            stderr,
            stderr_seen,
            status: None,
        }
    }

    /// The process id (to send it a signal).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, as text.
    pub fn line(&self) -> String {
        String::from_utf8_lossy(&self.bytes_line()).into_owned()
    }

    /// The next stdout line, as bytes.
    pub fn bytes_line(&self) -> Vec<u8> {
        match self.stdout.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(error) => panic!(
                "no stdout line within {WAIT:?} ({error}); stderr: {:?}",
                self.stderr_lines()
            ),
        }
    }

    /// Whether a stdout line arrives within `wait`.
    pub fn line_within(&self, wait: Duration) -> Option<String> {
        self.stdout
            .recv_timeout(wait)
            .ok()
            .map(|line| String::from_utf8_lossy(&line).into_owned())
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "no stderr line with {needle:?} within {WAIT:?}; stderr: {:?}",
                    self.stderr_lines()
                ),
            }
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_seen.lock().unwrap().clone()
    }

    /// Writes a line to stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Writes raw bytes to stdin, if the process still reads it (one
    /// that failed at once has closed it).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(bytes);
            let _ = stdin.flush();
        }
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends SIGINT (what Ctrl-C sends) to this process only.
    pub fn interrupt(&self) {
        self.signal("-INT");
    }

    /// Sends SIGTERM (what `kill` and service managers send) to this
    /// process only.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after [`WAIT`].
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.status = Some(status);
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "sockeye did not exit within {WAIT:?}; stderr: {:?}",
                    self.stderr_lines()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit and returns its code.
    pub fn exit_code(&mut self) -> i32 {
        self.wait().code().expect("exited, not killed by a signal")
    }

    /// The rest of stdout after the process exited.
    pub fn remaining_stdout(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(200)) {
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished one-shot command printed.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Asserts the exit status, that stderr is one `sockeye: ` line
/// containing `text`, and that nothing went to stdout.
pub fn assert_fails(finished: &Finished, code: i32, text: &str) {
    assert_eq!(finished.code, code, "stderr: {}", finished.stderr);
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "one line: {:?}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("sockeye: "),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains(text),
        "{:?} should contain {text:?}",
        finished.stderr
    );
    assert!(
        finished.stdout.is_empty(),
        "nothing on stdout: {}",
        finished.stdout
    );
}

/// Runs `sockeye ARGS` with `input` on stdin to the end.
pub fn run(args: &[&str], input: &[u8]) -> Finished {
    let mut proc = Proc::spawn(args);
    proc.send_bytes(input);
    proc.close_stdin();
    let code = proc.exit_code();
    let stdout = proc.remaining_stdout().join("\n");
    Finished {
        code,
        stdout,
        stderr: proc.stderr_lines().join("\n"),
    }
}

/// A `sockeye serve` on a free loopback port.
pub struct Server {
    pub proc: Proc,
    /// `ws://127.0.0.1:PORT` (or `wss://`).
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

/// Starts `sockeye serve --listen 127.0.0.1:0 ARGS` and waits until it
/// listens.
pub fn serve(args: &[&str]) -> Server {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--threads", "1"];
    all.extend_from_slice(args);
    let proc = Proc::spawn(&all);
    let line = proc.wait_stderr("listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a URL after 'listening on'")
        .to_owned();
    let address = url
        .split("://")
        .nth(1)
        .expect("scheme://address")
        .to_owned();
    Server { proc, url, address }
}

/// Starts `sockeye connect URL ARGS` and waits for its "connected to"
/// status line (so not with -q).
pub fn connect(url: &str, args: &[&str]) -> Proc {
    let mut all = vec!["connect", url];
    all.extend_from_slice(args);
    let proc = Proc::spawn(&all);
    proc.wait_stderr("connected to");
    proc
}

/// One raw HTTP/1.1 request; returns the whole response (the server
/// closes after it).
pub fn http(address: &str, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("a response");
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(response[..split].to_vec()).expect("an ASCII head");
    (head, response[split + 4..].to_vec())
}

/// `GET path` over a fresh connection.
pub fn get(address: &str, path: &str) -> (String, Vec<u8>) {
    http(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    )
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("sockeye-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file (creating its directories) and returns its path as a
    /// string.
    pub fn write(&self, name: &str, contents: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test PKI in PEM files: `ca.pem`, and `cert.pem` + `key.pem` for
/// localhost and 127.0.0.1, signed by the CA.
pub fn pki(dir: &Scratch) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sockeye CLI test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (
        dir.write("ca.pem", ca.pem().as_bytes()),
        dir.write("cert.pem", cert.pem().as_bytes()),
        dir.write("key.pem", key.serialize_pem().as_bytes()),
    )
}

/// Opens a WebSocket by hand over a raw TCP stream (no extensions) and
/// checks the 101; the stream is then left to the test, which reads the
/// server's frames with [`read_frame`] (or does not read at all).
pub fn raw_websocket(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the accept key of RFC 6455 section 1.3: {head}"
    );
    stream
}

/// Reads an HTTP head byte by byte (so no byte after it is taken), up to
/// and without the blank line.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("the head ended early ({other:?}): {head:?}"),
        }
        assert!(head.len() < 16 * 1024, "an endless head");
    }
    head.truncate(head.len() - 4);
    String::from_utf8(head).expect("an ASCII head")
}

/// A WebSocket frame as received, its payload unmasked: FIN is not kept
/// (control frames are never fragmented, and these tests send no
/// fragments).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    /// Whether it came masked (as a client's must, RFC 6455 section 5.3).
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a Close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one frame (RFC 6455 section 5.2), masked or not; `None` at a
/// clean end of the stream before its first byte. Panics on a time-out.
pub fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut header = [0u8; 2];
    match stream.read(&mut header[..1]) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(error) => panic!("no frame: {error}"),
    }
    stream.read_exact(&mut header[1..]).expect("a frame header");
    let opcode = header[0] & 0x0f;
    let masked = header[1] & 0x80 != 0;
    let length = match header[1] & 0x7f {
        126 => {
            let mut bytes = [0u8; 2];
            stream.read_exact(&mut bytes).unwrap();
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0u8; 8];
            stream.read_exact(&mut bytes).unwrap();
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    assert!(length <= 1 << 20, "a test frame of {length} bytes");
    let mut mask = [0u8; 4];
    if masked {
        stream.read_exact(&mut mask).unwrap();
    }
    let mut payload = vec![0u8; length as usize];
    stream
        .read_exact(&mut payload)
        .expect("the frame's payload");
    if masked {
        for (index, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[index % 4];
        }
    }
    Some(Frame {
        opcode,
        masked,
        payload,
    })
}

/// A masked frame, as a client sends it (RFC 6455 section 5.3).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    frame
}

/// A `redis-server` or `nats-server` on a free loopback port, for
/// `sockeye serve --backplane`; killed and reaped (by its own handle)
/// when dropped.
pub struct Broker {
    child: Child,
    /// `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` on `PATH`, in `/usr/bin`, `/usr/sbin` or `/usr/local/bin`.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path.into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

/// Starts a broker: `scheme` is `redis` or `nats`. `None`, after saying
/// so on stderr, when its server is not installed (the test is then
/// skipped).
pub fn broker(scheme: &str, test: &str) -> Option<Broker> {
    let program = match scheme {
        "redis" => "redis-server",
        "nats" => "nats-server",
        other => panic!("no broker for {other}"),
    };
    let Some(path) = find_program(program) else {
        // Straight to stderr: the test harness hides a passing test's
        // println.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: {program} not installed"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let args: Vec<&str> = match scheme {
        "redis" => vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        _ => vec!["-a", "127.0.0.1", "-p", &port],
    };
    let child = Command::new(path)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("{program} starts: {error}"));
    let broker = Broker {
        child,
        url: format!("{scheme}://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(
            Instant::now() < deadline,
            "{program} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(broker)
}
