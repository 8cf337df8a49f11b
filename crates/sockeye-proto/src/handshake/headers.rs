//! Header field grammar for the handshake: tokens, quoted strings and
//! comma-separated lists (RFC 7230 sections 3.2.6 and 7), as in
//! `Connection`, `Upgrade` and `Sec-WebSocket-Protocol`. The
//! `Sec-WebSocket-Extensions` grammar built on them is in `extensions.rs`.
//!
//! Every function here runs in time linear in its input, allocates output
//! bounded by the limits below, and never panics, whatever bytes it is
//! given: these parsers face the network and are fuzzed.
//!
//! List rules follow RFC 7230 section 7: repeated header fields are one list,
//! empty elements (`a, , b`) are ignored, but each header field must hold at
//! least one element (the `1#` rule), as Python `websockets` does.

use std::fmt;

use http::header::{HeaderMap, HeaderName};

/// The most elements a token list may hold across its header fields
/// (subprotocols offered by a client). Browsers offer a handful; the limit
/// only stops a peer from making us allocate thousands of strings.
pub const MAX_LIST_ELEMENTS: usize = 64;

/// A header field value that does not follow its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSyntaxError {
    reason: &'static str,
}

impl HeaderSyntaxError {
    pub(super) fn new(reason: &'static str) -> HeaderSyntaxError {
        HeaderSyntaxError { reason }
    }

    /// What is wrong, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for HeaderSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for HeaderSyntaxError {}

/// Whether `byte` is a `tchar` (RFC 7230 section 3.2.6).
pub(super) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Whether `bytes` is a `token` (RFC 7230 section 3.2.6): one or more
/// visible ASCII characters other than separators.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&byte| is_token_byte(byte))
}

/// Whether any header field `name` lists `token`, compared ASCII
/// case-insensitively, as RFC 6455 requires for `Connection: upgrade` and
/// `Upgrade: websocket`.
///
/// Elements that are not tokens are skipped rather than rejected: a
/// `Connection` header may carry options this crate knows nothing about.
pub fn contains_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&byte| byte == b',')
            .any(|element| trim_whitespace(element).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Parses one header field value as `1#token` (for example
/// `Sec-WebSocket-Protocol: chat, superchat`), keeping the order.
pub fn parse_token_list(value: &[u8]) -> Result<Vec<String>, HeaderSyntaxError> {
    let mut tokens = Vec::new();
    push_token_list(value, &mut tokens)?;
    Ok(tokens)
}

/// Parses every header field `name` as one `1#token` list, in order.
/// Returns an empty list when the header is absent.
pub fn parse_tokens(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Vec<String>, HeaderSyntaxError> {
    let mut tokens = Vec::new();
    for value in headers.get_all(name) {
        push_token_list(value.as_bytes(), &mut tokens)?;
    }
    Ok(tokens)
}

fn push_token_list(value: &[u8], tokens: &mut Vec<String>) -> Result<(), HeaderSyntaxError> {
    parse_list(value, |cursor| {
        let token = cursor
            .token()
            .ok_or(HeaderSyntaxError::new("expected a token"))?;
        if tokens.len() == MAX_LIST_ELEMENTS {
            return Err(HeaderSyntaxError::new("too many list elements"));
        }
        tokens.push(token.to_owned());
        Ok(())
    })
}

/// Walks a `1#element` list, calling `element` at the start of each
/// non-empty element. Empty elements are skipped (RFC 7230 section 7), but
/// the list must hold at least one element.
pub(super) fn parse_list<'a>(
    value: &'a [u8],
    mut element: impl FnMut(&mut Cursor<'a>) -> Result<(), HeaderSyntaxError>,
) -> Result<(), HeaderSyntaxError> {
    let mut cursor = Cursor {
        bytes: value,
        position: 0,
    };
    cursor.skip_empty_elements();
    if cursor.at_end() {
        return Err(HeaderSyntaxError::new("empty list"));
    }
    loop {
        element(&mut cursor)?;
        cursor.skip_whitespace();
        if cursor.at_end() {
            return Ok(());
        }
        if !cursor.eat(b',') {
            return Err(HeaderSyntaxError::new("expected a comma"));
        }
        cursor.skip_empty_elements();
        if cursor.at_end() {
            return Ok(());
        }
    }
}

/// A position in a header value. Every method checks bounds, so no input
/// can make the parsers index out of range.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) position: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    pub(super) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.position += 1;
        }
    }

    /// Skips whitespace and commas: leading or repeated list delimiters.
    pub(super) fn skip_empty_elements(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.position += 1;
        }
    }

    pub(super) fn token(&mut self) -> Option<&'a str> {
        let start = self.position;
        while self.peek().is_some_and(is_token_byte) {
            self.position += 1;
        }
        let token = self.bytes.get(start..self.position)?;
        if token.is_empty() {
            return None;
        }
        // Token bytes are ASCII, so this never fails.
        std::str::from_utf8(token).ok()
    }

    /// A quoted-string (RFC 7230 section 3.2.6) whose unescaped content must
    /// be a token (RFC 6455 section 9.1).
    pub(super) fn quoted_token(&mut self) -> Result<String, HeaderSyntaxError> {
        let unterminated = HeaderSyntaxError::new("unterminated quoted string");
        let not_token = HeaderSyntaxError::new("quoted value is not a token");
        if !self.eat(b'"') {
            return Err(HeaderSyntaxError::new("expected a quoted string"));
        }
        let mut value = String::new();
        loop {
            let byte = self.peek().ok_or(unterminated)?;
            self.position += 1;
            let byte = match byte {
                b'"' => break,
                b'\\' => {
                    let escaped = self.peek().ok_or(unterminated)?;
                    self.position += 1;
                    escaped
                }
                other => other,
            };
            if !is_token_byte(byte) {
                return Err(not_token);
            }
            value.push(char::from(byte));
        }
        if value.is_empty() {
            return Err(not_token);
        }
        Ok(value)
    }
}

fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_PROTOCOL};

    fn headers(name: HeaderName, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"permessage-deflate"));
        assert!(is_token(b"!#$%&'*+-.^_`|~09azAZ"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a/b"));
        assert!(!is_token(b"caf\xc3\xa9"));
        assert!(!is_token(b"\"a\""));
    }

    #[test]
    fn contains_token_merges_fields_and_ignores_case_and_spacing() {
        let map = headers(CONNECTION, &["keep-alive", " \tUpGrade , close"]);
        assert!(contains_token(&map, &CONNECTION, "upgrade"));
        assert!(contains_token(&map, &CONNECTION, "keep-alive"));
        assert!(!contains_token(&map, &CONNECTION, "upgrad"));
        assert!(!contains_token(
            &headers(CONNECTION, &["upgrades"]),
            &CONNECTION,
            "upgrade"
        ));
        assert!(!contains_token(&HeaderMap::new(), &CONNECTION, "upgrade"));
    }

    #[test]
    fn token_lists_skip_empty_elements_but_need_one() {
        assert_eq!(
            parse_token_list(b"chat, superchat").unwrap(),
            ["chat", "superchat"]
        );
        assert_eq!(
            parse_token_list(b" ,chat,, ,superchat ,").unwrap(),
            ["chat", "superchat"]
        );
        assert_eq!(parse_token_list(b"").unwrap_err().reason(), "empty list");
        assert_eq!(
            parse_token_list(b" , ,").unwrap_err().reason(),
            "empty list"
        );
        assert_eq!(
            parse_token_list(b"chat superchat").unwrap_err().reason(),
            "expected a comma"
        );
        assert_eq!(
            parse_token_list(b"chat, /").unwrap_err().reason(),
            "expected a token"
        );
    }

    #[test]
    fn token_lists_merge_repeated_fields_in_order() {
        let map = headers(SEC_WEBSOCKET_PROTOCOL, &["a, b", "c"]);
        assert_eq!(
            parse_tokens(&map, &SEC_WEBSOCKET_PROTOCOL).unwrap(),
            ["a", "b", "c"]
        );
        let map = headers(SEC_WEBSOCKET_PROTOCOL, &["a", ""]);
        assert!(parse_tokens(&map, &SEC_WEBSOCKET_PROTOCOL).is_err());
    }

    #[test]
    fn token_lists_are_bounded() {
        let long = vec!["a"; MAX_LIST_ELEMENTS].join(",");
        assert_eq!(
            parse_token_list(long.as_bytes()).unwrap().len(),
            MAX_LIST_ELEMENTS
        );
        let too_long = format!("{long},a");
        assert_eq!(
            parse_token_list(too_long.as_bytes()).unwrap_err().reason(),
            "too many list elements"
        );
    }
}
