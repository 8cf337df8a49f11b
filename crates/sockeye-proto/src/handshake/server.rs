//! The server's side of the opening handshake (RFC 6455 sections 4.2.1 and
//! 4.2.2): checking a client's request against the protocol and the
//! server's policy, and building the 101 response or the refusal.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN,
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};

use super::error::{HandshakeError, HandshakeErrorKind, rejection};
use super::extensions::{ExtensionOffer, format_extensions, parse_extensions};
use super::headers::{contains_token, parse_tokens};
use super::key::{accept_key, is_valid_key};
use super::negotiate::{ExtensionNegotiator, Negotiated, NoExtensions};
use super::origin::{HostPort, OriginPolicy, parse_host_port};
use crate::extension::deflate::{DeflateParams, PERMESSAGE_DEFLATE};

type Selector = dyn Fn(&Request<()>, &[&str]) -> Option<String> + Send + Sync;
type Filter = dyn Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync;

/// How the server picks a subprotocol.
#[derive(Clone)]
enum SubprotocolChoice {
    /// The first of these (the server's order) that the client offered.
    Preference(Vec<String>),
    /// The application decides.
    Selector(Arc<Selector>),
}

/// A server's handshake policy: build it once, then [`accept`] each
/// request.
///
/// ```
/// use http::{Request, StatusCode};
/// use sockeye_proto::handshake::ServerHandshake;
///
/// let server = ServerHandshake::new()
///     .subprotocols(["chat.v2", "chat.v1"])
///     .allow_origins(["https://example.com"]);
///
/// let request = Request::get("/chat")
///     .header("Host", "ws.example.com")
///     .header("Upgrade", "websocket")
///     .header("Connection", "Upgrade")
///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("Sec-WebSocket-Version", "13")
///     .header("Origin", "https://example.com")
///     .header("Sec-WebSocket-Protocol", "chat.v1, chat.v2")
///     .body(())
///     .unwrap();
/// let accepted = server.accept(&request).unwrap();
/// assert_eq!(accepted.response.status(), StatusCode::SWITCHING_PROTOCOLS);
/// assert_eq!(accepted.response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("chat.v2"));
/// ```
///
/// # Checks, in order, and what each failure answers
///
/// | check | refusal |
/// |---|---|
/// | method is GET | 405, `Allow: GET` |
/// | HTTP/1.1 | 400 for HTTP/1.0 and older; 505 for HTTP/2 and later, which upgrade with extended CONNECT (RFC 8441) instead |
/// | no body: no `Transfer-Encoding`, no `Content-Length` but `0` | 400 |
/// | `Upgrade` lists `websocket` | 426 with `Upgrade: websocket` and `Sec-WebSocket-Version: 13`: a plain HTTP request, or a broken WebSocket one, told what this resource speaks (RFC 7231 section 6.5.15) |
/// | `Connection` lists `upgrade` | 400: a broken WebSocket client or a proxy that dropped it |
/// | one valid `Host` | 400 (RFC 7230 section 5.4) |
/// | one `Sec-WebSocket-Version: 13` | 426 with `Sec-WebSocket-Version: 13` (RFC 6455 section 4.4) |
/// | one `Sec-WebSocket-Key`, base64 of 16 bytes | 400 |
/// | request target is a path or an absolute http(s)/ws(s) URI | 400 |
/// | one `Origin`, allowed by the [origin policy](#origin-policy) | 400 when repeated, 403 when not allowed |
/// | `Sec-WebSocket-Protocol` is a list of distinct tokens | 400 |
/// | `Sec-WebSocket-Extensions` follows RFC 6455 section 9.1 | 400 |
/// | the [request filter](Self::filter_request) | the filter's response |
///
/// All of these are [`HandshakeError`]s; send
/// [`HandshakeError::to_response`] and close the connection.
///
/// # Origin policy
///
/// - Default: a request without `Origin` is accepted (only browsers must
///   send one, and a non-browser client can send whatever it likes, so its
///   absence proves nothing); a request whose `Origin` names the host and
///   port of its `Host` header is accepted; every other `Origin`, including
///   `null` (sandboxed pages, `file:` URLs) and malformed ones, is refused
///   with 403. Hosts compare ASCII case-insensitively, ignoring a trailing
///   dot; ports compare with the scheme's default filled in, and a `Host`
///   without a port matches an origin on its scheme's default port (with
///   [`accept`](Self::accept), the server cannot see whether the client
///   used `ws` or `wss`; with [`accept_secure`](Self::accept_secure) it
///   can, and the origin's scheme must match the connection's). This is
///   gorilla/websocket's rule with default ports understood.
/// - [`allow_origins`](Self::allow_origins): only the listed origins.
/// - [`allow_any_origin`](Self::allow_any_origin): no check.
/// - [`require_origin`](Self::require_origin): also refuse requests without
///   `Origin` (403).
///
/// [`accept`]: ServerHandshake::accept
#[derive(Clone)]
pub struct ServerHandshake {
    subprotocols: SubprotocolChoice,
    origin_policy: OriginPolicy,
    require_origin: bool,
    pub(super) headers: HeaderMap,
    filter: Option<Arc<Filter>>,
    negotiator: Arc<dyn ExtensionNegotiator>,
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subprotocols: &dyn fmt::Debug = match &self.subprotocols {
            SubprotocolChoice::Preference(list) => list,
            SubprotocolChoice::Selector(_) => &"<selector>",
        };
        f.debug_struct("ServerHandshake")
            .field("subprotocols", subprotocols)
            .field("origin_policy", &self.origin_policy)
            .field("require_origin", &self.require_origin)
            .field("headers", &self.headers)
            .field("filter", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ServerHandshake {
    fn default() -> Self {
        ServerHandshake::new()
    }
}

/// A request the server accepted.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted {
    /// The 101 Switching Protocols response to send: `Upgrade`,
    /// `Connection`, `Sec-WebSocket-Accept`, the chosen subprotocol and
    /// extensions, then the policy's extra headers. Add per-connection
    /// headers (a session cookie) before sending it.
    pub response: Response<()>,
    /// The subprotocol and extensions agreed on.
    pub negotiated: Negotiated,
}

impl ServerHandshake {
    /// The default policy: no subprotocol, no extension, same-host origins
    /// (see [Origin policy](#origin-policy)), no extra header, no filter.
    pub fn new() -> ServerHandshake {
        ServerHandshake {
            subprotocols: SubprotocolChoice::Preference(Vec::new()),
            origin_policy: OriginPolicy::SameHost,
            require_origin: false,
            headers: HeaderMap::new(),
            filter: None,
            negotiator: Arc::new(NoExtensions),
        }
    }

    /// The subprotocols the server speaks, most preferred first. The server
    /// picks the first of this list that the client offered, whatever the
    /// client's order: the server knows best which of its protocols it
    /// would rather speak. Without a match no subprotocol is chosen and the
    /// response has no `Sec-WebSocket-Protocol` (RFC 6455 section 4.2.2);
    /// the connection still opens and the client decides whether to stay.
    /// Replaces a [`select_subprotocol`](Self::select_subprotocol) selector.
    pub fn subprotocols<I, S>(mut self, preference: I) -> ServerHandshake
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols =
            SubprotocolChoice::Preference(preference.into_iter().map(Into::into).collect());
        self
    }

    /// Chooses the subprotocol with a function of the request and the
    /// client's offers (in the client's order). It returns one of the
    /// offers or `None`; returning anything else is refused with 500
    /// rather than sent, since RFC 6455 forbids choosing a subprotocol the
    /// client did not offer. Replaces a [`subprotocols`](Self::subprotocols)
    /// list.
    pub fn select_subprotocol<F>(mut self, selector: F) -> ServerHandshake
    where
        F: Fn(&Request<()>, &[&str]) -> Option<String> + Send + Sync + 'static,
    {
        self.subprotocols = SubprotocolChoice::Selector(Arc::new(selector));
        self
    }

    /// Accepts only these origins (`scheme://host[:port]`, matched on
    /// scheme, host and port with defaults filled in, ASCII
    /// case-insensitively; other entries such as `null` match as exact
    /// case-insensitive strings). Replaces the same-host rule.
    pub fn allow_origins<I, S>(mut self, origins: I) -> ServerHandshake
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.origin_policy = OriginPolicy::allow_list(origins);
        self
    }

    /// Accepts every origin: for servers that authenticate each connection
    /// by other means than cookies, or are meant to be reached from any
    /// site.
    pub fn allow_any_origin(mut self) -> ServerHandshake {
        self.origin_policy = OriginPolicy::Any;
        self
    }

    /// Whether a request without `Origin` is refused with 403. Default:
    /// false.
    pub fn require_origin(mut self, require: bool) -> ServerHandshake {
        self.require_origin = require;
        self
    }

    /// Adds a header field to every 101 response. Header fields the
    /// handshake sets itself (`Upgrade`, `Connection` and the
    /// `Sec-WebSocket-*` fields) are not added: the handshake decides them.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> ServerHandshake {
        self.headers.append(name, value);
        self
    }

    /// Inspects each request that passed the protocol and origin checks;
    /// returning a response refuses the request with it, such as 401 with
    /// `WWW-Authenticate` or a 3xx redirect (RFC 6455 section 4.2.2 items 2
    /// and 3), and `None` lets it through. [`rejection`] builds a simple
    /// refusal.
    pub fn filter_request<F>(mut self, filter: F) -> ServerHandshake
    where
        F: Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync + 'static,
    {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Chooses extensions among the client's offers. Default:
    /// [`NoExtensions`].
    pub fn extensions<N>(mut self, negotiator: N) -> ServerHandshake
    where
        N: ExtensionNegotiator + 'static,
    {
        self.negotiator = Arc::new(negotiator);
        self
    }

    /// A refusal response for reasons of the application's own; the same as
    /// [`rejection`].
    pub fn reject(status: StatusCode, reason: &str) -> Response<Bytes> {
        rejection(status, reason)
    }

    /// Checks a request and, when it passes, builds the 101 response.
    /// See the table above for the checks and their refusals.
    ///
    /// The server is taken not to know whether the request came over TLS:
    /// the same-host origin rule accepts either scheme. A server that
    /// knows calls [`ServerHandshake::accept_secure`].
    pub fn accept(&self, request: &Request<()>) -> Result<Accepted, HandshakeError> {
        self.accept_over(request, None)
    }

    /// Like [`ServerHandshake::accept`], for a server that knows whether
    /// the request came over TLS (`secure`): the default same-host origin
    /// rule then also compares the scheme, so a page on `https://host`
    /// is not the same origin as a plain `ws://host` connection, nor
    /// `http://host` as `wss://host` (RFC 6454: an origin is a scheme, a
    /// host and a port). Behind a proxy that terminates TLS, the server
    /// does not know what the browser used: call `accept`, or list the
    /// origins with [`ServerHandshake::allow_origins`].
    pub fn accept_secure(
        &self,
        request: &Request<()>,
        secure: bool,
    ) -> Result<Accepted, HandshakeError> {
        self.accept_over(request, Some(secure))
    }

    fn accept_over(
        &self,
        request: &Request<()>,
        secure: Option<bool>,
    ) -> Result<Accepted, HandshakeError> {
        let headers = request.headers();
        check_request_line(request)?;
        check_no_body(headers)?;
        if !contains_token(headers, &UPGRADE, "websocket") {
            return Err(reject(
                HandshakeErrorKind::InvalidUpgrade,
                StatusCode::UPGRADE_REQUIRED,
            ));
        }
        if !contains_token(headers, &CONNECTION, "upgrade") {
            return Err(bad_request(HandshakeErrorKind::InvalidConnection));
        }
        let host = single(headers, &HOST)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_host_port)
            .ok_or_else(|| bad_request(HandshakeErrorKind::InvalidHost))?;
        if single(headers, &SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
            return Err(reject(
                HandshakeErrorKind::UnsupportedVersion,
                StatusCode::UPGRADE_REQUIRED,
            ));
        }
        let key = single(headers, &SEC_WEBSOCKET_KEY)
            .filter(|key| is_valid_key(key.as_bytes()))
            .ok_or_else(|| bad_request(HandshakeErrorKind::InvalidKey))?;
        if !is_valid_target(request) {
            return Err(bad_request(HandshakeErrorKind::InvalidRequestTarget));
        }
        let negotiated = self.negotiate(request, host, secure)?;
        let response = self.response(
            key.as_bytes(),
            negotiated.subprotocol.as_deref(),
            &negotiated.extensions,
        )?;
        Ok(Accepted {
            response,
            negotiated,
        })
    }

    /// The checks and choices both HTTP versions share: the origin, the
    /// offered subprotocols and extensions, the request filter; then the
    /// subprotocol and extensions chosen.
    pub(super) fn negotiate(
        &self,
        request: &Request<()>,
        host: HostPort<'_>,
        secure: Option<bool>,
    ) -> Result<Negotiated, HandshakeError> {
        let headers = request.headers();
        self.check_origin(headers, host, secure)?;
        let offered_protocols = parse_tokens(headers, &SEC_WEBSOCKET_PROTOCOL)
            .map_err(|error| invalid_header(SEC_WEBSOCKET_PROTOCOL, error.reason()))?;
        for (index, protocol) in offered_protocols.iter().enumerate() {
            if offered_protocols[..index].contains(protocol) {
                // RFC 6455 section 4.1 item 10: offers MUST be unique.
                return Err(invalid_header(
                    SEC_WEBSOCKET_PROTOCOL,
                    "repeated subprotocol",
                ));
            }
        }
        let offered_extensions = parse_extensions(headers)
            .map_err(|error| invalid_header(SEC_WEBSOCKET_EXTENSIONS, error.reason()))?;
        if let Some(filter) = &self.filter
            && let Some(response) = filter(request)
        {
            return Err(HandshakeError::refused(response));
        }
        let subprotocol = self.choose_subprotocol(request, &offered_protocols)?;
        let extensions = self.negotiate_extensions(&offered_extensions)?;
        let deflate = match extensions
            .iter()
            .find(|extension| extension.name == PERMESSAGE_DEFLATE)
        {
            None => None,
            Some(answer) => Some(DeflateParams::from_response(answer).map_err(|_| {
                negotiation_bug("the extension negotiator answered an invalid permessage-deflate")
            })?),
        };
        Ok(Negotiated {
            subprotocol,
            extensions,
            deflate,
        })
    }

    fn check_origin(
        &self,
        headers: &HeaderMap,
        host: HostPort<'_>,
        secure: Option<bool>,
    ) -> Result<(), HandshakeError> {
        let mut origins = headers.get_all(ORIGIN).iter();
        let (Some(origin), None) = (origins.next(), origins.next()) else {
            if headers.contains_key(ORIGIN) {
                // RFC 6454 section 7.3: a user agent sends one Origin.
                return Err(invalid_header(ORIGIN, "repeated header"));
            }
            if self.require_origin {
                return Err(reject(
                    HandshakeErrorKind::OriginRefused,
                    StatusCode::FORBIDDEN,
                ));
            }
            return Ok(());
        };
        if !self.origin_policy.allows(origin.as_bytes(), host, secure) {
            return Err(reject(
                HandshakeErrorKind::OriginRefused,
                StatusCode::FORBIDDEN,
            ));
        }
        Ok(())
    }

    fn choose_subprotocol(
        &self,
        request: &Request<()>,
        offered: &[String],
    ) -> Result<Option<String>, HandshakeError> {
        if offered.is_empty() {
            return Ok(None);
        }
        match &self.subprotocols {
            SubprotocolChoice::Preference(preference) => Ok(preference
                .iter()
                .find(|protocol| offered.contains(protocol))
                .cloned()),
            SubprotocolChoice::Selector(selector) => {
                let offered_slices: Vec<&str> = offered.iter().map(String::as_str).collect();
                match selector(request, &offered_slices) {
                    Some(chosen) if !offered.contains(&chosen) => Err(negotiation_bug(
                        "the subprotocol selector chose a subprotocol the client did not offer",
                    )),
                    chosen => Ok(chosen),
                }
            }
        }
    }

    fn negotiate_extensions(
        &self,
        offered: &[ExtensionOffer],
    ) -> Result<Vec<ExtensionOffer>, HandshakeError> {
        if offered.is_empty() {
            return Ok(Vec::new());
        }
        let accepted = self.negotiator.negotiate(offered);
        for extension in &accepted {
            if !offered.iter().any(|offer| offer.name == extension.name) {
                return Err(negotiation_bug(
                    "the extension negotiator accepted an extension the client did not offer",
                ));
            }
        }
        Ok(accepted)
    }

    fn response(
        &self,
        key: &[u8],
        subprotocol: Option<&str>,
        extensions: &[ExtensionOffer],
    ) -> Result<Response<()>, HandshakeError> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept = HeaderValue::try_from(accept_key(key))
            .map_err(|_| negotiation_bug("unencodable accept value"))?;
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(subprotocol) = subprotocol {
            // Offers were parsed as tokens, so this cannot fail.
            let value = HeaderValue::try_from(subprotocol)
                .map_err(|_| negotiation_bug("unencodable subprotocol"))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !extensions.is_empty() {
            let value = format_extensions(extensions).map_err(|_| {
                negotiation_bug("the extension negotiator answered parameters that are not tokens")
            })?;
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        for (name, value) in &self.headers {
            if !is_handshake_header(name) {
                headers.append(name, value.clone());
            }
        }
        Ok(response)
    }
}

fn check_request_line(request: &Request<()>) -> Result<(), HandshakeError> {
    if request.method() != Method::GET {
        return Err(reject(
            HandshakeErrorKind::MethodNotAllowed,
            StatusCode::METHOD_NOT_ALLOWED,
        ));
    }
    match request.version() {
        Version::HTTP_11 => Ok(()),
        Version::HTTP_09 | Version::HTTP_10 => {
            Err(bad_request(HandshakeErrorKind::UnsupportedHttpVersion))
        }
        _ => Err(reject(
            HandshakeErrorKind::UnsupportedHttpVersion,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        )),
    }
}

/// A handshake request has no body; bytes after its head are WebSocket
/// frames. A request announcing a body is refused rather than guessed at,
/// since a front-end and a proxy that disagree on where the body ends could
/// be made to read frames as a second request (request smuggling). Python
/// `websockets` draws the same line, accepting only `Content-Length: 0`.
fn check_no_body(headers: &HeaderMap) -> Result<(), HandshakeError> {
    if headers.contains_key(TRANSFER_ENCODING) {
        return Err(invalid_header(
            TRANSFER_ENCODING,
            "a handshake request has no body",
        ));
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    if lengths.any(|length| length != "0") {
        return Err(invalid_header(
            CONTENT_LENGTH,
            "a handshake request has no body",
        ));
    }
    Ok(())
}

/// RFC 6455 section 4.1 item 3: a resource name, or an absolute http(s)
/// URI (ws and wss are accepted too, since that is what the client
/// dialled).
fn is_valid_target(request: &Request<()>) -> bool {
    let uri = request.uri();
    match uri.scheme_str() {
        Some(scheme) => {
            ["http", "https", "ws", "wss"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(scheme))
                && uri.host().is_some_and(|host| !host.is_empty())
        }
        None => uri.authority().is_none() && uri.path().starts_with('/'),
    }
}

/// The value of a header field that must appear exactly once.
pub(super) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

pub(super) fn is_handshake_header(name: &HeaderName) -> bool {
    [
        &UPGRADE,
        &CONNECTION,
        &SEC_WEBSOCKET_ACCEPT,
        &SEC_WEBSOCKET_PROTOCOL,
        &SEC_WEBSOCKET_EXTENSIONS,
        &SEC_WEBSOCKET_KEY,
        &SEC_WEBSOCKET_VERSION,
    ]
    .contains(&name)
}

pub(super) fn reject(kind: HandshakeErrorKind, status: StatusCode) -> HandshakeError {
    HandshakeError::reject(kind, status)
}

pub(super) fn bad_request(kind: HandshakeErrorKind) -> HandshakeError {
    HandshakeError::reject(kind, StatusCode::BAD_REQUEST)
}

pub(super) fn invalid_header(name: HeaderName, reason: &'static str) -> HandshakeError {
    bad_request(HandshakeErrorKind::InvalidHeader { name, reason })
}

pub(super) fn negotiation_bug(what: &'static str) -> HandshakeError {
    HandshakeError::reject(
        HandshakeErrorKind::NegotiationBug(what),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, origin: &str, protocols: &str, extensions: &str) -> Option<Request<()>> {
        Request::get("/")
            .header("host", host)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .header("origin", origin)
            .header("sec-websocket-protocol", protocols)
            .header("sec-websocket-extensions", extensions)
            .body(())
            .ok()
    }

    #[test]
    fn debug_output_names_the_policy() {
        let server = ServerHandshake::new().subprotocols(["chat"]);
        let debug = format!("{server:?}");
        assert!(
            debug.contains("\"chat\"") && debug.contains("SameHost"),
            "{debug}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_values_give_a_decision_without_panicking(
            host in "[a-z.:\\[\\]0-9@]{0,12}",
            origin in "[a-z.:/\\[\\]0-9]{0,20}",
            protocols in "[a-c, ;\"=]{0,12}",
            extensions in "[a-c, ;\"=\\\\]{0,16}",
        ) {
            let Some(request) = request(&host, &origin, &protocols, &extensions) else {
                return Ok(());
            };
            let server = ServerHandshake::new().allow_any_origin().subprotocols(["a", "b"]);
            match server.accept(&request) {
                Ok(accepted) => {
                    proptest::prop_assert_eq!(accepted.response.status(), StatusCode::SWITCHING_PROTOCOLS);
                    if let Some(chosen) = accepted.negotiated.subprotocol {
                        proptest::prop_assert!(protocols.contains(chosen.as_str()));
                    }
                }
                Err(error) => {
                    let status = error.status().unwrap();
                    proptest::prop_assert!(status == StatusCode::BAD_REQUEST, "{}", error);
                }
            }
            let same_host = ServerHandshake::new().accept(&request);
            if let Err(error) = same_host {
                let status = error.status().unwrap().as_u16();
                proptest::prop_assert!(status == 400 || status == 403, "{}", error);
            }
        }
    }
}
