//! The client's side of the opening handshake (RFC 6455 sections 3 and 4.1):
//! the request for a `ws://` or `wss://` URI, and the validation of the
//! server's response.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    AUTHORIZATION, CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN,
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Uri, Version};

use super::error::{HandshakeError, HandshakeErrorKind};
use super::extensions::{
    ExtensionOffer, format_extensions, parse_extension_list, parse_extensions,
};
use super::headers::{contains_token, is_token, parse_tokens};
use super::key::{accept_key, generate_key};
use super::negotiate::Negotiated;
use super::origin::{default_port, parse_host_port};
use crate::extension::deflate::{DeflateOffer, DeflateParams, PERMESSAGE_DEFLATE};

/// A client's opening handshake: the request to send and what the response
/// must say.
///
/// ```
/// use sockeye_proto::handshake::ClientHandshake;
///
/// let handshake = ClientHandshake::builder("wss://example.com:8443/chat?room=1")
///     .origin("https://example.com")
///     .subprotocols(["chat.v2", "chat.v1"])
///     .build()
///     .unwrap();
/// let request = handshake.request();
/// assert_eq!(request.uri(), "/chat?room=1");
/// assert_eq!(request.headers()["host"], "example.com:8443");
/// assert_eq!(request.headers()["sec-websocket-protocol"], "chat.v2, chat.v1");
/// // Send it with `write_request`, read the response with
/// // `ResponseParser`, then call `handshake.finish(&response)`.
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    request: Request<()>,
    key: String,
    subprotocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
    /// `wss://`: the `:scheme` over HTTP/2 is `https`.
    pub(super) secure: bool,
}

/// Options for a [`ClientHandshake`]. Every mistake (a bad URI, an invalid
/// header) is reported once, by [`build`](ClientBuilder::build).
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    uri: String,
    origin: Option<String>,
    subprotocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
    headers: HeaderMap,
    error: Option<HandshakeError>,
}

impl ClientHandshake {
    /// Options for a handshake with the server at `uri`.
    pub fn builder(uri: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            uri: uri.into(),
            origin: None,
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            headers: HeaderMap::new(),
            error: None,
        }
    }

    /// A handshake with the server at `uri`, without options.
    pub fn new(uri: impl Into<String>) -> Result<ClientHandshake, HandshakeError> {
        ClientHandshake::builder(uri).build()
    }

    /// The request to send: `GET` with the URI's path and query as target,
    /// HTTP/1.1, `Host`, `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, then the options.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The Sec-WebSocket-Key sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The subprotocols offered, in order of preference.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The extensions offered, in order of preference.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// Validates the server's response (RFC 6455 section 4.1, the client's
    /// checks in the order the RFC lists them):
    ///
    /// 1. status 101, otherwise [`HandshakeErrorKind::UnexpectedStatus`]
    ///    carrying the status and head (the front-end may add the body);
    /// 2. HTTP/1.1;
    /// 3. `Upgrade` is exactly `websocket` (ASCII case-insensitively): one
    ///    protocol, since the server switches to one;
    /// 4. `Connection` lists `upgrade` (case-insensitively, among other
    ///    options, across repeated fields);
    /// 5. one `Sec-WebSocket-Accept`, equal to the value derived from the
    ///    key;
    /// 6. `Sec-WebSocket-Extensions`, if any, follows the grammar and only
    ///    names offered extensions (compared exactly), each at most once;
    ///    repeated fields are one list (RFC 6455 section 4.2.2 item 6,
    ///    which section 11.3.2 contradicts; Python `websockets` also merges);
    /// 7. `Sec-WebSocket-Protocol`, if any, appears once with one offered
    ///    token (compared exactly).
    pub fn finish(&self, response: &Response<()>) -> Result<Negotiated, HandshakeError> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::unexpected_status(response));
        }
        if response.version() != Version::HTTP_11 {
            return Err(HandshakeError::fail(
                HandshakeErrorKind::UnsupportedHttpVersion,
            ));
        }
        let headers = response.headers();
        match parse_tokens(headers, &UPGRADE).as_deref() {
            Ok([protocol]) if protocol.eq_ignore_ascii_case("websocket") => {}
            _ => return Err(HandshakeError::fail(HandshakeErrorKind::InvalidUpgrade)),
        }
        if !contains_token(headers, &CONNECTION, "upgrade") {
            return Err(HandshakeError::fail(HandshakeErrorKind::InvalidConnection));
        }
        let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(accept), None)
                if trim(accept.as_bytes()) == accept_key(self.key.as_bytes()).as_bytes() => {}
            _ => return Err(HandshakeError::fail(HandshakeErrorKind::InvalidAccept)),
        }
        self.negotiated(headers)
    }

    /// Checks the server's choices, the same over HTTP/1.1 and HTTP/2:
    /// items 6 and 7 of [`finish`](ClientHandshake::finish).
    pub(super) fn negotiated(&self, headers: &HeaderMap) -> Result<Negotiated, HandshakeError> {
        let extensions = parse_extensions(headers)
            .map_err(|error| invalid_header(SEC_WEBSOCKET_EXTENSIONS, error.reason()))?;
        for (index, extension) in extensions.iter().enumerate() {
            let offered = self
                .extensions
                .iter()
                .any(|offer| offer.name == extension.name);
            let repeated = extensions[..index]
                .iter()
                .any(|earlier| earlier.name == extension.name);
            if !offered || repeated {
                return Err(HandshakeError::fail(
                    HandshakeErrorKind::UnofferedExtension(extension.name.clone()),
                ));
            }
        }
        let deflate = self.check_deflate(&extensions)?;
        let mut protocols = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter();
        let subprotocol = match (protocols.next(), protocols.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                return Err(invalid_header(SEC_WEBSOCKET_PROTOCOL, "repeated header"));
            }
            (Some(value), None) => {
                let value = trim(value.as_bytes());
                if !is_token(value) {
                    return Err(invalid_header(SEC_WEBSOCKET_PROTOCOL, "expected one token"));
                }
                let value = String::from_utf8_lossy(value).into_owned();
                if !self.subprotocols.contains(&value) {
                    return Err(HandshakeError::fail(
                        HandshakeErrorKind::UnofferedSubprotocol(value),
                    ));
                }
                Some(value)
            }
        };
        Ok(Negotiated {
            subprotocol,
            extensions,
            deflate,
        })
    }

    /// Checks a `permessage-deflate` answer against the offers it may
    /// answer (RFC 7692 section 7.1: a client fails the connection on an
    /// invalid answer); the parameters of the first offer it fits.
    fn check_deflate(
        &self,
        extensions: &[ExtensionOffer],
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        let Some(answer) = extensions
            .iter()
            .find(|extension| extension.name == PERMESSAGE_DEFLATE)
        else {
            return Ok(None);
        };
        let mut first_error = None;
        for offer in self
            .extensions
            .iter()
            .filter(|offer| offer.name == PERMESSAGE_DEFLATE)
        {
            match DeflateOffer::parse_offer(offer).and_then(|offer| offer.accept_response(answer)) {
                Ok(params) => return Ok(Some(params)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let reason = first_error.map_or_else(|| "no valid offer".to_owned(), |e| e.to_string());
        Err(HandshakeError::fail(HandshakeErrorKind::InvalidExtension {
            name: PERMESSAGE_DEFLATE.to_owned(),
            reason,
        }))
    }
}

impl ClientBuilder {
    /// Sends `Origin: origin`, as a browser would for a page of that origin
    /// (RFC 6455 section 4.1 item 8). Default: no Origin.
    pub fn origin(mut self, origin: impl Into<String>) -> ClientBuilder {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol, after those already offered.
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> ClientBuilder {
        self.subprotocols.push(subprotocol.into());
        self
    }

    /// Offers subprotocols, most preferred first, after those already
    /// offered. Each must be a token and appear once.
    pub fn subprotocols<I, S>(mut self, subprotocols: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols
            .extend(subprotocols.into_iter().map(Into::into));
        self
    }

    /// Offers an extension, after those already offered.
    pub fn extension(mut self, offer: ExtensionOffer) -> ClientBuilder {
        self.extensions.push(offer);
        self
    }

    /// Offers the extensions of a `Sec-WebSocket-Extensions` value such as
    /// `permessage-deflate; client_max_window_bits`, after those already
    /// offered.
    pub fn extensions_header(mut self, value: &str) -> ClientBuilder {
        match parse_extension_list(value.as_bytes()) {
            Ok(offers) => self.extensions.extend(offers),
            Err(_) => self.record(HandshakeErrorKind::InvalidOption(
                "malformed extension offer",
            )),
        }
        self
    }

    /// Adds a header field, such as `Cookie` or `User-Agent`. `Host`,
    /// `Origin` and `Authorization` replace the values derived from the URI
    /// and options (to reach a virtual host by address, for instance). The
    /// fields the handshake owns (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) are refused: use the options.
    pub fn header<K, V>(mut self, name: K, value: V) -> ClientBuilder
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(_)) if is_handshake_header(&name) => {
                self.record(HandshakeErrorKind::InvalidOption(
                    "the handshake sets Upgrade, Connection and Sec-WebSocket-* itself",
                ));
            }
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.record(HandshakeErrorKind::InvalidOption(
                "invalid header name or value",
            )),
        }
        self
    }

    fn record(&mut self, kind: HandshakeErrorKind) {
        if self.error.is_none() {
            self.error = Some(HandshakeError::fail(kind));
        }
    }

    /// Checks the URI and options and generates the key.
    ///
    /// The URI must be `ws://` or `wss://` (any case) with a host, an
    /// optional port and no fragment (RFC 6455 section 3). The port
    /// defaults to 80 or 443, and `Host` carries it only when it is not
    /// the default; IPv6 literals keep their brackets. The request target
    /// is the path and query, `/` when empty, with non-ASCII bytes
    /// percent-encoded. Userinfo (`ws://user:pass@host/`) becomes
    /// `Authorization: Basic` with the percent-decoded user and password (a
    /// missing password is empty, as curl does), and never appears in the
    /// request target.
    pub fn build(self) -> Result<ClientHandshake, HandshakeError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let target = RequestTarget::parse(&self.uri)?;
        for (index, subprotocol) in self.subprotocols.iter().enumerate() {
            if !is_token(subprotocol.as_bytes()) {
                return Err(option_error("subprotocols must be tokens"));
            }
            if self.subprotocols[..index].contains(subprotocol) {
                return Err(option_error("subprotocols must be distinct"));
            }
        }
        let key = generate_key();
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.version_mut() = Version::HTTP_11;
        *request.uri_mut() = Uri::try_from(target.path_and_query.as_str())
            .map_err(|_| HandshakeError::fail(HandshakeErrorKind::InvalidUri("invalid path")))?;
        let headers = request.headers_mut();
        let host = HeaderValue::try_from(target.host)
            .map_err(|_| HandshakeError::fail(HandshakeErrorKind::InvalidUri("invalid host")))?;
        headers.insert(HOST, host);
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            SEC_WEBSOCKET_KEY,
            HeaderValue::try_from(key.as_str()).map_err(|_| option_error("invalid key"))?,
        );
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        if let Some(origin) = &self.origin {
            let origin = HeaderValue::try_from(origin.as_str())
                .map_err(|_| option_error("invalid origin"))?;
            headers.insert(ORIGIN, origin);
        }
        if !self.subprotocols.is_empty() {
            let value = HeaderValue::try_from(self.subprotocols.join(", "))
                .map_err(|_| option_error("subprotocols must be tokens"))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !self.extensions.is_empty() {
            let value = format_extensions(&self.extensions)
                .map_err(|_| option_error("extension names and parameters must be tokens"))?;
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        if let Some(mut authorization) = target.authorization {
            authorization.set_sensitive(true);
            headers.insert(AUTHORIZATION, authorization);
        }
        for name in [HOST, ORIGIN, AUTHORIZATION] {
            if self.headers.contains_key(&name) {
                headers.remove(&name);
            }
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        Ok(ClientHandshake {
            request,
            key,
            secure: target.secure,
            subprotocols: self.subprotocols,
            extensions: self.extensions,
        })
    }
}

/// What a `ws://` URI contributes to the request.
#[derive(Debug)]
struct RequestTarget {
    host: String,
    secure: bool,
    path_and_query: String,
    authorization: Option<HeaderValue>,
}

impl RequestTarget {
    fn parse(text: &str) -> Result<RequestTarget, HandshakeError> {
        let invalid = |what| HandshakeError::fail(HandshakeErrorKind::InvalidUri(what));
        // http::Uri drops fragments silently; RFC 6455 section 3 forbids
        // them.
        if text.contains('#') {
            return Err(invalid("fragments are not allowed"));
        }
        let uri = Uri::try_from(text).map_err(|_| invalid("not a URI"))?;
        let scheme = uri.scheme_str().ok_or_else(|| invalid("no scheme"))?;
        if !scheme.eq_ignore_ascii_case("ws") && !scheme.eq_ignore_ascii_case("wss") {
            return Err(invalid("the scheme must be ws or wss"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?.as_str();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let parsed = parse_host_port(host_port).ok_or_else(|| invalid("invalid host or port"))?;
        let mut host = parsed.host.to_ascii_lowercase();
        if let Some(port) = parsed
            .port
            .filter(|&port| Some(port) != default_port(scheme))
        {
            host.push(':');
            host.push_str(&port.to_string());
        }
        let mut path_and_query = String::new();
        percent_encode_non_ascii(uri.path(), &mut path_and_query);
        if let Some(query) = uri.query() {
            path_and_query.push('?');
            percent_encode_non_ascii(query, &mut path_and_query);
        }
        if !path_and_query.starts_with('/') {
            path_and_query.insert(0, '/');
        }
        let authorization = userinfo.map(basic_authorization).transpose()?;
        Ok(RequestTarget {
            host,
            secure: scheme.eq_ignore_ascii_case("wss"),
            path_and_query,
            authorization,
        })
    }
}

/// `Authorization: Basic` for percent-encoded `user[:password]` (RFC 7617).
fn basic_authorization(userinfo: &str) -> Result<HeaderValue, HandshakeError> {
    let invalid = || HandshakeError::fail(HandshakeErrorKind::InvalidUri("invalid userinfo"));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user).ok_or_else(invalid)?;
    let password = percent_decode(password).ok_or_else(invalid)?;
    // RFC 7617 section 2: no colon in the user-id, no control characters.
    if user.contains(&b':')
        || user
            .iter()
            .chain(&password)
            .any(|byte| byte.is_ascii_control())
    {
        return Err(invalid());
    }
    let mut credentials = user;
    credentials.push(b':');
    credentials.extend_from_slice(&password);
    let value = format!("Basic {}", STANDARD.encode(credentials));
    HeaderValue::try_from(value).map_err(|_| invalid())
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = hex_value(*bytes.get(index + 1)?)?;
            let low = hex_value(*bytes.get(index + 2)?)?;
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    Some(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

fn percent_encode_non_ascii(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn is_handshake_header(name: &HeaderName) -> bool {
    [
        &UPGRADE,
        &CONNECTION,
        &SEC_WEBSOCKET_KEY,
        &SEC_WEBSOCKET_VERSION,
        &SEC_WEBSOCKET_ACCEPT,
        &SEC_WEBSOCKET_PROTOCOL,
        &SEC_WEBSOCKET_EXTENSIONS,
    ]
    .contains(&name)
}

fn option_error(what: &'static str) -> HandshakeError {
    HandshakeError::fail(HandshakeErrorKind::InvalidOption(what))
}

fn invalid_header(name: HeaderName, reason: &'static str) -> HandshakeError {
    HandshakeError::fail(HandshakeErrorKind::InvalidHeader { name, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> RequestTarget {
        RequestTarget::parse(uri).unwrap()
    }

    #[test]
    fn host_carries_only_non_default_ports() {
        assert_eq!(target("ws://Example.COM/").host, "example.com");
        assert_eq!(target("ws://example.com:80/").host, "example.com");
        assert_eq!(target("wss://example.com:443/").host, "example.com");
        assert_eq!(target("ws://example.com:443/").host, "example.com:443");
        assert_eq!(target("wss://example.com:80/").host, "example.com:80");
        assert_eq!(target("ws://[::1]:9001/").host, "[::1]:9001");
        assert_eq!(target("wss://[2001:db8::1]/").host, "[2001:db8::1]");
    }

    #[test]
    fn target_is_path_and_query() {
        assert_eq!(target("ws://example.com").path_and_query, "/");
        assert_eq!(target("ws://example.com?x=1").path_and_query, "/?x=1");
        assert_eq!(
            target("ws://example.com/a/b?x=1&y").path_and_query,
            "/a/b?x=1&y"
        );
        assert_eq!(
            target("ws://example.com/caf\u{e9}").path_and_query,
            "/caf%C3%A9"
        );
    }

    #[test]
    fn userinfo_becomes_basic_authorization() {
        let authorization = target("ws://user:p%40ss@example.com/")
            .authorization
            .unwrap();
        // base64("user:p@ss")
        assert_eq!(authorization, "Basic dXNlcjpwQHNz");
        let authorization = target("ws://token@example.com/").authorization.unwrap();
        assert_eq!(authorization, "Basic dG9rZW46"); // base64("token:")
        assert!(target("ws://example.com/").authorization.is_none());
    }

    #[test]
    fn invalid_uris_are_refused() {
        for (uri, reason) in [
            ("http://example.com/", "the scheme must be ws or wss"),
            ("ws://example.com/#top", "fragments are not allowed"),
            ("ws://example.com:99999/", "invalid host or port"),
            ("ws://:80/", "invalid host or port"),
            ("ws://example.com:/", "invalid host or port"),
            ("ws://us%3Aer:pw@example.com/", "invalid userinfo"),
            ("ws://user:%zz@example.com/", "invalid userinfo"),
            ("ws://user:%0A@example.com/", "invalid userinfo"),
            ("/chat", "no scheme"),
            ("ws ://x", "not a URI"),
        ] {
            let error = RequestTarget::parse(uri).unwrap_err();
            assert_eq!(
                error.kind(),
                &HandshakeErrorKind::InvalidUri(reason),
                "{uri}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2fc").unwrap(), b"a b/c");
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
    }
}
