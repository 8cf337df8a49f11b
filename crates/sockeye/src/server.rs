//! Accepting connections with the tokio front-end: [`accept`] and
//! [`ServerBuilder`]'s `accept` methods. The decisions (what to accept,
//! the limits) are the policy's ([`crate::policy`]); this module reads
//! requests and writes answers.

use std::time::Duration;

use http::Request;
use sockeye_proto::handshake::{self, HandshakeError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::handshake_io::{read_head, write_all};
use crate::policy::{ConnectionInfo, ServerBuilder};
use crate::stats::RefusalReason;
use crate::tls::ServerStream;
use crate::tokio::WebSocket;

/// Accepts a WebSocket connection on `stream` with the default policy:
/// no subprotocol, same-origin browsers and non-browser clients only, a
/// 10 s handshake timeout. See [`ServerBuilder`] for options.
///
/// # Cancel safety
/// Dropping the future abandons the handshake and the stream.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ServerBuilder::new().accept(stream).await
}

impl ServerBuilder {
    /// Accepts a TCP connection: TLS first if [`ServerBuilder::tls`] was
    /// given (within the handshake timeout), then the WebSocket handshake.
    /// Sets `TCP_NODELAY`: frames are corked by sockeye, not by Nagle.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_tcp(&self, tcp: TcpStream) -> Result<WebSocket<ServerStream>, Error> {
        tcp.set_nodelay(true)?;
        let known = ConnectionInfo::new(tcp.peer_addr().ok(), Some(self.tls.is_some()));
        // One deadline for TLS and HTTP together.
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let stream = self.open_tls(tcp, deadline).await?;
        if let ServerStream::Tls(tls) = &stream
            && tls.get_ref().1.alpn_protocol() == Some(b"h2")
        {
            return Err(Error::InvalidInput(
                "the client chose HTTP/2 by ALPN: serve it with serve_tcp or accept_http2",
            ));
        }
        self.accept_until(stream, &[], deadline, known)
            .await
            .map(|(ws, _)| ws)
    }

    /// Serves one TCP connection to its end, over HTTP/1.1 or HTTP/2
    /// (RFC 8441), calling `handler` for each WebSocket it carries: TLS
    /// first if [`ServerBuilder::tls`] was given (HTTP/2 when the rustls
    /// config lists `h2` in `alpn_protocols` and the client chose it), in
    /// cleartext HTTP/2 when the client opens with the HTTP/2 connection
    /// preface (prior knowledge), HTTP/1.1 otherwise. The same policy,
    /// limits and budgets apply either way, and the handler gets the same
    /// [`WebSocket<ServerStream>`] and request.
    ///
    /// Over HTTP/1.1 `handler` runs once, in this future. Over HTTP/2 each
    /// WebSocket's handler runs in a task of its own (`tokio::spawn`), and
    /// this future drives the connection until it ends; requests that are
    /// not WebSocket handshakes are answered `405` (`Allow: CONNECT`).
    /// Sets `TCP_NODELAY`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sockeye::Error> {
    /// let server = sockeye::ServerBuilder::new();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    /// loop {
    ///     let (tcp, _) = listener.accept().await?;
    ///     let server = server.clone();
    ///     tokio::spawn(async move {
    ///         let _ = server
    ///             .serve_tcp(tcp, |mut ws, _request| async move {
    ///                 while let Some(Ok(message)) = ws.recv().await {
    ///                     if ws.send(message).await.is_err() { break }
    ///                 }
    ///             })
    ///             .await;
    ///     });
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// The first failure before any WebSocket opened: TLS, a refused
    /// handshake (already answered with its status), a timeout, an
    /// HTTP/2 connection error.
    ///
    /// # Cancel safety
    /// Dropping the future ends the connection: over HTTP/1.1 the
    /// WebSocket with it; over HTTP/2 every WebSocket on it stops moving
    /// (their tasks then fail).
    pub async fn serve_tcp<H, F>(&self, tcp: TcpStream, handler: H) -> Result<(), Error>
    where
        H: Fn(WebSocket<ServerStream>, Request<()>) -> F + Clone + Send + Sync + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        // The TLS handshake, the request head and HTTP/2 are boxed, each
        // freed when done: inline, the future, held for the connection's
        // life while `handler` runs, would be as large as the largest of
        // them (2336 bytes against 456 boxed, release).
        tcp.set_nodelay(true)?;
        let known = ConnectionInfo::new(tcp.peer_addr().ok(), Some(self.tls.is_some()));
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let stream = Box::pin(self.open_tls(tcp, deadline)).await?;
        #[cfg(feature = "http2")]
        let (stream, read) = {
            use crate::http2::Detected;
            let detected = tokio::time::timeout_at(deadline, crate::http2::detect(stream))
                .await
                .map_err(|_| Error::OpenTimeout)??;
            match detected {
                Detected::Http1 { stream, read } => (stream, read),
                Detected::Http2(io) => {
                    return Box::pin(self.serve_http2(io, known, handler)).await;
                }
            }
        };
        #[cfg(not(feature = "http2"))]
        let read = Vec::new();
        let (ws, request) = Box::pin(self.accept_until(stream, &read, deadline, known)).await?;
        handler(ws, request).await;
        Ok(())
    }

    /// TLS first, if configured, within the handshake's deadline.
    async fn open_tls(
        &self,
        tcp: TcpStream,
        deadline: tokio::time::Instant,
    ) -> Result<ServerStream, Error> {
        Ok(match &self.tls {
            None => ServerStream::Plain(tcp),
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let tls = tokio::time::timeout_at(deadline, acceptor.accept(tcp))
                    .await
                    .map_err(|_| Error::OpenTimeout)?
                    .map_err(Error::Tls)?;
                ServerStream::Tls(Box::new(tls))
            }
        })
    }

    /// `serve_tcp` over HTTP/2: every WebSocket stream to `handler` in a
    /// task of its own, every other request refused.
    #[cfg(feature = "http2")]
    async fn serve_http2<T, H, F>(
        &self,
        io: T,
        known: ConnectionInfo,
        handler: H,
    ) -> Result<(), Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
        H: Fn(WebSocket<ServerStream>, Request<()>) -> F + Clone + Send + Sync + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        use crate::http2::Http2Request;
        let mut connection = self.accept_http2(io, known).await?;
        while let Some(request) = connection.next().await {
            match request? {
                Http2Request::WebSocket(pending) => {
                    if let Ok((ws, request)) = pending.accept_with_request() {
                        tokio::spawn(handler(ws, request));
                    }
                }
                Http2Request::Http(request) => {
                    let mut response = crate::h2::refusal(
                        http::StatusCode::METHOD_NOT_ALLOWED,
                        "this server speaks WebSocket only: use an extended CONNECT",
                    );
                    response.headers_mut().insert(
                        http::header::ALLOW,
                        http::HeaderValue::from_static("CONNECT"),
                    );
                    let _ = request.respond(response);
                }
            }
        }
        Ok(())
    }

    /// Performs the server side of the opening handshake on `stream`. A
    /// request that fails a check is answered with its HTTP status (400,
    /// 403, 405, 426, 431, ...) and a short reason, and the error is
    /// returned.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept<S>(&self, stream: S) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with_request(stream).await.map(|(ws, _)| ws)
    }

    /// Like [`ServerBuilder::accept`], and also returns the request (its
    /// path, query, cookies).
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_with_request<S>(
        &self,
        stream: S,
    ) -> Result<(WebSocket<S>, Request<()>), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        self.accept_until(stream, &[], deadline, ConnectionInfo::new(None, None))
            .await
    }

    /// Completes the opening handshake for a request the caller has
    /// already read from `stream`: a server that also serves plain HTTP
    /// on the same port reads each request head itself (with
    /// [`RequestParser`](crate::proto::handshake::RequestParser), or hyper), answers the ones that are not
    /// upgrades, and hands the others here with the bytes it read past
    /// the head (`leftover`: the client's first frames, if it did not wait
    /// for the `101`). The request is checked against the policy and the
    /// connection limit, like [`ServerBuilder::accept`]'s; a refused one
    /// is answered with its HTTP status and the error returned. Writing
    /// the answer is bounded by the handshake timeout.
    ///
    /// ```no_run
    /// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), sockeye::Error> {
    /// use sockeye::proto::handshake::RequestParser;
    /// use tokio::io::AsyncReadExt;
    ///
    /// let server = sockeye::ServerBuilder::new();
    /// let mut tcp = tcp;
    /// let mut parser = RequestParser::new();
    /// let mut buffer = [0u8; 4096];
    /// let (request, leftover) = loop {
    ///     let n = tcp.read(&mut buffer).await?;
    ///     if n == 0 {
    ///         return Ok(());
    ///     }
    ///     match parser.parse(&buffer[..n]) {
    ///         Ok(Some(parsed)) => break (parsed.head, buffer[parsed.consumed..n].to_vec()),
    ///         Ok(None) => {}
    ///         Err(error) => {
    ///             // 400, 431, ...
    ///             sockeye::answer_refusal(&mut tcp, &error).await;
    ///             return Err(error.into());
    ///         }
    ///     }
    /// };
    /// // ... route on request.uri().path(), answer plain HTTP, or:
    /// let ws = server.accept_request(tcp, &request, &leftover).await?;
    /// # drop(ws); Ok(())
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_request<S>(
        &self,
        stream: S,
        request: &Request<()>,
        leftover: &[u8],
    ) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let known = ConnectionInfo::new(None, None);
        self.answer_until(stream, request, leftover, deadline, known)
            .await
    }

    /// Reads the request (`read`: its first bytes, already read) and
    /// answers it.
    async fn accept_until<S>(
        &self,
        mut stream: S,
        read: &[u8],
        deadline: tokio::time::Instant,
        known: ConnectionInfo,
    ) -> Result<(WebSocket<S>, Request<()>), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut parser = self.request_parser();
        let head = async {
            if !read.is_empty()
                && let Some(parsed) = parser.parse(read)?
            {
                return Ok((parsed.head, read[parsed.consumed..].to_vec()));
            }
            read_head(&mut stream, |bytes| parser.parse(bytes)).await
        };
        let (request, leftover) = match tokio::time::timeout_at(deadline, head).await {
            Ok(Ok(head)) => head,
            Ok(Err(error)) => {
                if let Error::Handshake(refusal) = &error {
                    self.record_refusal(RefusalReason::of_handshake(refusal));
                }
                refuse(&mut stream, &error).await;
                return Err(error);
            }
            Err(_) => return Err(Error::OpenTimeout),
        };
        let ws = self
            .answer_until(stream, &request, &leftover, deadline, known)
            .await?;
        Ok((ws, request))
    }

    /// Checks a request that was read, and answers it: `101` and the
    /// WebSocket, or the refusal.
    async fn answer_until<S>(
        &self,
        mut stream: S,
        request: &Request<()>,
        leftover: &[u8],
        deadline: tokio::time::Instant,
        known: ConnectionInfo,
    ) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let answer = async {
            let admission = self.admit(request, known)?;
            let mut response = Vec::with_capacity(256);
            handshake::write_response(&admission.response, &mut response);
            write_all(&mut stream, &response).await?;
            Ok::<_, Error>(admission)
        };
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(admission)) => {
                let mut ws = WebSocket::from_engine(stream, admission.engine, leftover);
                let mut permit = admission.permit;
                // Frames the client sent with its request.
                permit.tally.read(leftover.len());
                ws.permit = Some(permit);
                ws.budget = Some(admission.budget);
                Ok(ws)
            }
            Ok(Err(error)) => {
                refuse(&mut stream, &error).await;
                Err(error)
            }
            Err(_) => Err(Error::OpenTimeout),
        }
    }
}

/// Answers a refused handshake with its HTTP status, when it has one. The
/// client may be gone: this is best effort, and bounded.
async fn refuse<S>(stream: &mut S, error: &Error)
where
    S: AsyncWrite + Unpin,
{
    if let Error::Handshake(refusal) = error {
        answer_refusal(stream, refusal).await;
    }
}

/// Answers a refused opening handshake: writes the error's HTTP response
/// (its status, a short reason, `Connection: close`) and shuts the stream
/// down, within one second and ignoring write errors (the client may be
/// gone). For servers that read requests themselves (see
/// [`ServerBuilder::accept_request`]) and must answer one that failed to
/// parse (400, 431, ...). Does nothing for an error that has no response
/// (one a client found in a server's answer).
///
/// # Cancel safety
/// Dropping the future may leave the answer partly written.
pub async fn answer_refusal<S>(stream: &mut S, error: &HandshakeError)
where
    S: AsyncWrite + Unpin,
{
    let Some(response) = error.to_response() else {
        return;
    };
    let mut bytes = Vec::new();
    handshake::write_response_with_body(&response, &mut bytes);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = write_all(stream, &bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
