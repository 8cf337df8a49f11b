//! `Sec-WebSocket-Extensions` (RFC 6455 section 9.1): the offers a client
//! makes, the answer a server gives, parsed and formatted to the letter of
//! the grammar.
//!
//! Linear in the input, bounded in output, and free of panics on any input,
//! like the rest of the header grammar in `headers.rs`.

use std::fmt;

use http::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};

use super::headers::{Cursor, HeaderSyntaxError, is_token, parse_list};

/// The most extensions a `Sec-WebSocket-Extensions` list may hold across
/// its header fields. Real clients offer one to four.
pub const MAX_EXTENSIONS: usize = 32;

/// The most parameters one extension may carry. permessage-deflate, the
/// richest extension in use, defines four.
pub const MAX_EXTENSION_PARAMS: usize = 32;

/// One element of a `Sec-WebSocket-Extensions` list: an extension name and
/// its parameters, in order (RFC 6455 section 9.1).
///
/// The same type serves the client's offers and the server's answer.
/// Duplicate parameters are kept: the grammar allows them, and whether they
/// are an error is up to the extension (permessage-deflate refuses them).
/// Quoted values are stored unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionOffer {
    /// The extension token, such as `permessage-deflate`.
    pub name: String,
    /// The parameters: a name and, when given, a value.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// An extension without parameters.
    pub fn new(name: impl Into<String>) -> ExtensionOffer {
        ExtensionOffer {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter, with or without a value.
    pub fn with_param(mut self, name: impl Into<String>, value: Option<&str>) -> ExtensionOffer {
        self.params.push((name.into(), value.map(str::to_owned)));
        self
    }

    /// The first parameter called `name` (compared ASCII
    /// case-insensitively): `None` when absent, `Some(None)` when present
    /// without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(param, _)| param.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref())
    }

    /// Whether the name, every parameter name and every value are tokens,
    /// so that the offer can be sent.
    pub fn is_valid(&self) -> bool {
        is_token(self.name.as_bytes())
            && self.params.iter().all(|(name, value)| {
                is_token(name.as_bytes())
                    && value
                        .as_ref()
                        .is_none_or(|value| is_token(value.as_bytes()))
            })
    }
}

/// Writes the offer as it appears in a header: `name; param; param=value`.
/// Values are written bare, since they must be tokens; check
/// [`ExtensionOffer::is_valid`] (or use [`format_extensions`]) before
/// sending an offer built by hand.
impl fmt::Display for ExtensionOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            if let Some(value) = value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

/// Parses every `Sec-WebSocket-Extensions` header field as one list
/// (RFC 6455 section 9.1: repeated fields are equivalent to one).
/// Returns an empty list when the header is absent.
pub fn parse_extensions(headers: &HeaderMap) -> Result<Vec<ExtensionOffer>, HeaderSyntaxError> {
    let mut extensions = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        push_extension_list(value.as_bytes(), &mut extensions)?;
    }
    Ok(extensions)
}

/// Parses one `Sec-WebSocket-Extensions` header field value:
///
/// ```text
/// extension-list  = 1#extension
/// extension       = token *( OWS ";" OWS extension-param )
/// extension-param = token [ OWS "=" OWS ( token / quoted-string ) ]
/// ```
///
/// A quoted value must be a token once unquoted.
///
/// ```
/// use sockeye_proto::handshake::parse_extension_list;
///
/// let offers = parse_extension_list(
///     b"permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\"",
/// )
/// .unwrap();
/// assert_eq!(offers.len(), 2);
/// assert_eq!(offers[0].param("client_max_window_bits"), Some(None));
/// assert_eq!(offers[1].param("server_max_window_bits"), Some(Some("10")));
/// ```
pub fn parse_extension_list(value: &[u8]) -> Result<Vec<ExtensionOffer>, HeaderSyntaxError> {
    let mut extensions = Vec::new();
    push_extension_list(value, &mut extensions)?;
    Ok(extensions)
}

fn push_extension_list(
    value: &[u8],
    extensions: &mut Vec<ExtensionOffer>,
) -> Result<(), HeaderSyntaxError> {
    parse_list(value, |cursor| {
        let extension = parse_extension(cursor)?;
        if extensions.len() == MAX_EXTENSIONS {
            return Err(HeaderSyntaxError::new("too many extensions"));
        }
        extensions.push(extension);
        Ok(())
    })
}

fn parse_extension(cursor: &mut Cursor<'_>) -> Result<ExtensionOffer, HeaderSyntaxError> {
    let name = cursor
        .token()
        .ok_or(HeaderSyntaxError::new("expected an extension name"))?;
    let mut extension = ExtensionOffer::new(name);
    loop {
        let before = cursor.position;
        cursor.skip_whitespace();
        if !cursor.eat(b';') {
            // Leave the whitespace to the list parser.
            cursor.position = before;
            return Ok(extension);
        }
        cursor.skip_whitespace();
        let name = cursor
            .token()
            .ok_or(HeaderSyntaxError::new("expected a parameter name"))?;
        let before_value = cursor.position;
        cursor.skip_whitespace();
        let value = if cursor.eat(b'=') {
            cursor.skip_whitespace();
            let value = if cursor.peek() == Some(b'"') {
                cursor.quoted_token()?
            } else {
                cursor
                    .token()
                    .ok_or(HeaderSyntaxError::new("expected a parameter value"))?
                    .to_owned()
            };
            Some(value)
        } else {
            cursor.position = before_value;
            None
        };
        if extension.params.len() == MAX_EXTENSION_PARAMS {
            return Err(HeaderSyntaxError::new("too many extension parameters"));
        }
        extension.params.push((name.to_owned(), value));
    }
}

/// Formats extensions as one `Sec-WebSocket-Extensions` value, refusing
/// anything that would not parse back (an empty list, names or values that
/// are not tokens).
pub fn format_extensions(extensions: &[ExtensionOffer]) -> Result<HeaderValue, HeaderSyntaxError> {
    if extensions.is_empty() {
        return Err(HeaderSyntaxError::new("empty extension list"));
    }
    let mut value = String::new();
    for (index, extension) in extensions.iter().enumerate() {
        if !extension.is_valid() {
            return Err(HeaderSyntaxError::new(
                "extension names and parameters must be tokens",
            ));
        }
        if index > 0 {
            value.push_str(", ");
        }
        value.push_str(&extension.to_string());
    }
    HeaderValue::try_from(value).map_err(|_| HeaderSyntaxError::new("invalid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::headers::parse_token_list;
    use http::header::HeaderName;

    fn headers(name: HeaderName, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    fn error(value: &[u8]) -> &'static str {
        parse_extension_list(value).unwrap_err().reason()
    }

    #[test]
    fn extensions_with_params_and_whitespace() {
        let offers =
            parse_extension_list(b"mux ; max-channels = 4 ;flow-control, deflate-stream").unwrap();
        assert_eq!(
            offers,
            [
                ExtensionOffer::new("mux")
                    .with_param("max-channels", Some("4"))
                    .with_param("flow-control", None),
                ExtensionOffer::new("deflate-stream"),
            ]
        );
    }

    #[test]
    fn quoted_values_are_unquoted_and_unescaped() {
        let offers = parse_extension_list(br#"x; a="10"; b="\1\2""#).unwrap();
        assert_eq!(offers[0].param("a"), Some(Some("10")));
        assert_eq!(offers[0].param("b"), Some(Some("12")));
    }

    #[test]
    fn duplicate_params_are_kept_in_order() {
        let offers = parse_extension_list(b"x; a=1; a=2; A").unwrap();
        assert_eq!(offers[0].params.len(), 3);
        assert_eq!(offers[0].param("a"), Some(Some("1")));
        assert_eq!(offers[0].params[1], ("a".to_owned(), Some("2".to_owned())));
    }

    #[test]
    fn malformed_extension_lists_are_rejected() {
        assert_eq!(error(b""), "empty list");
        assert_eq!(error(b" , "), "empty list");
        assert_eq!(error(b"x;"), "expected a parameter name");
        assert_eq!(error(b"x;;a"), "expected a parameter name");
        assert_eq!(error(b";a"), "expected an extension name");
        assert_eq!(error(b"x; a="), "expected a parameter value");
        assert_eq!(error(b"x; a=b=c"), "expected a comma");
        assert_eq!(error(b"x y"), "expected a comma");
        assert_eq!(error(b"x; a=\"1 0\""), "quoted value is not a token");
        assert_eq!(error(b"x; a=\"\""), "quoted value is not a token");
        assert_eq!(error(b"x; a=\"\\\"\""), "quoted value is not a token");
        assert_eq!(error(b"x; a=\"10"), "unterminated quoted string");
        assert_eq!(error(b"x; a=\"10\\"), "unterminated quoted string");
        assert_eq!(error(b"x; a=1\x00"), "expected a comma");
        assert_eq!(error(b"d\xc3\xa9flate"), "expected a comma");
        assert_eq!(error(b"x; a=10 \"b\""), "expected a comma");
    }

    #[test]
    fn extension_counts_are_bounded() {
        let many = vec!["x"; MAX_EXTENSIONS + 1].join(",");
        assert_eq!(error(many.as_bytes()), "too many extensions");
        let params = "x".to_owned() + &";a".repeat(MAX_EXTENSION_PARAMS + 1);
        assert_eq!(error(params.as_bytes()), "too many extension parameters");
        let params = "x".to_owned() + &";a".repeat(MAX_EXTENSION_PARAMS);
        assert_eq!(
            parse_extension_list(params.as_bytes()).unwrap()[0]
                .params
                .len(),
            32
        );
    }

    #[test]
    fn repeated_extension_fields_form_one_list() {
        let map = headers(SEC_WEBSOCKET_EXTENSIONS, &["foo", "bar; baz=2"]);
        assert_eq!(
            parse_extensions(&map).unwrap(),
            parse_extension_list(b"foo, bar; baz=2").unwrap()
        );
        let map = headers(SEC_WEBSOCKET_EXTENSIONS, &["foo", ""]);
        assert_eq!(parse_extensions(&map).unwrap_err().reason(), "empty list");
    }

    #[test]
    fn formatted_extensions_parse_back() {
        let offers = vec![
            ExtensionOffer::new("permessage-deflate").with_param("client_max_window_bits", None),
            ExtensionOffer::new("x")
                .with_param("a", Some("1"))
                .with_param("a", Some("2")),
        ];
        let value = format_extensions(&offers).unwrap();
        assert_eq!(
            value,
            "permessage-deflate; client_max_window_bits, x; a=1; a=2"
        );
        assert_eq!(parse_extension_list(value.as_bytes()).unwrap(), offers);
    }

    #[test]
    fn formatting_refuses_what_would_not_parse() {
        assert!(format_extensions(&[]).is_err());
        assert!(format_extensions(&[ExtensionOffer::new("a b")]).is_err());
        assert!(format_extensions(&[ExtensionOffer::new("")]).is_err());
        assert!(
            format_extensions(&[ExtensionOffer::new("x").with_param("a", Some("\"1\""))]).is_err()
        );
        assert!(format_extensions(&[ExtensionOffer::new("x").with_param("a\r\n", None)]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap stand-in for the fuzzer: every short string over the
        // alphabet that matters to the grammar.
        let alphabet = b"a;=\", \\\t\x80";
        let mut input = Vec::new();
        for length in 0..=5u32 {
            for mut index in 0..alphabet.len().pow(length) {
                input.clear();
                for _ in 0..length {
                    input.push(alphabet[index % alphabet.len()]);
                    index /= alphabet.len();
                }
                if let Ok(offers) = parse_extension_list(&input) {
                    // Whatever parses formats and parses back the same.
                    let value = format_extensions(&offers).unwrap();
                    assert_eq!(parse_extension_list(value.as_bytes()).unwrap(), offers);
                }
                let _ = parse_token_list(&input);
            }
        }
    }
}
