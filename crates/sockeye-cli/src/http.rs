//! The HTTP side of `sockeye serve`: the built-in demo page at `/`, and
//! static files from `--dir`, answered on the WebSocket port (RFC 7230,
//! RFC 7231 sections 4.3.1-4.3.2: GET and HEAD).
//!
//! The built-in page is always at [`PAGE_PATH`] too, so that it stays
//! reachable when `--dir` has its own `index.html` (the page connects to
//! the server's `/` and `/room/NAME`, wherever it is served from).
//!
//! One request per connection (`Connection: close`). Paths are
//! percent-decoded and checked segment by segment: `..` is refused with
//! 403, and so is any file whose real path (symbolic links resolved) is
//! outside the directory. A directory is served by its `index.html`.
//!
//! A request that carries WebSocket headers but not the upgrade itself is
//! a broken WebSocket client, not a browser: it gets 426 Upgrade Required
//! (RFC 7231 section 6.5.15, RFC 6455 section 4.4) rather than the page.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, LAST_MODIFIED, LOCATION,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::failure::Failure;
use crate::serve::{Mode, write_all};

/// The built-in page: echo and chat in the browser.
const PAGE: &str = include_str!("page.html");

/// Where the built-in page always is, whatever `--dir` holds.
pub const PAGE_PATH: &str = "/_sockeye/";

/// What `serve` answers over HTTP.
#[derive(Debug)]
pub struct Site {
    /// The canonical `--dir`, if given.
    root: Option<PathBuf>,
    /// The built-in page, with the server's mode filled in.
    page: Bytes,
}

impl Site {
    /// The site for `dir` (which must be a readable directory) and mode.
    pub fn new(dir: Option<&Path>, mode: Mode) -> Result<Site, Failure> {
        let root = match dir {
            None => None,
            Some(dir) => {
                let root = dir
                    .canonicalize()
                    .map_err(|error| Failure::usage(format!("--dir {}: {error}", dir.display())))?;
                if !root.is_dir() {
                    return Err(Failure::usage(format!(
                        "--dir {}: not a directory",
                        dir.display()
                    )));
                }
                Some(root)
            }
        };
        let page = Bytes::from(PAGE.replace("{{MODE}}", mode.name()));
        Ok(Site { root, page })
    }
}

/// What a request resolves to.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The built-in page.
    Page,
    /// A file under the root.
    File(PathBuf),
    /// A directory asked for without its trailing slash: redirect there.
    Redirect(String),
    /// An error status.
    Status(StatusCode),
}

/// Answers one HTTP request and shuts the connection down. Returns the
/// status sent.
pub async fn respond<S>(
    stream: &mut S,
    request: &Request<()>,
    site: &Site,
) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let head_only = request.method() == Method::HEAD;
    let status = match resolve(request, site) {
        Target::Page => {
            send(
                stream,
                StatusCode::OK,
                "text/html; charset=utf-8",
                None,
                &site.page,
                head_only,
            )
            .await?
        }
        Target::File(path) => send_file(stream, &path, head_only).await?,
        Target::Redirect(location) => {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved");
            if let Ok(location) = HeaderValue::try_from(location) {
                response.headers_mut().insert(LOCATION, location);
            }
            send_response(stream, response, head_only).await?
        }
        Target::Status(status) => {
            let mut response = plain(status, status.canonical_reason().unwrap_or("error"));
            if status == StatusCode::METHOD_NOT_ALLOWED {
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            send_response(stream, response, head_only).await?
        }
    };
    let _ = stream.shutdown().await;
    Ok(status)
}

/// The whole response to one HTTP request, in memory: for HTTP/2, whose
/// streams are answered with a response value (files are read whole; the
/// HTTP/2 layer sends the body as the client's window allows, and leaves
/// it out for HEAD).
pub async fn response(request: &Request<()>, site: &Site) -> Response<Bytes> {
    let target = resolve(request, site);
    let contents = match &target {
        Target::File(path) => Some(tokio::fs::read(path).await),
        _ => None,
    };
    finish_response(target, contents, site)
}

/// [`response`] for the event loop, whose callbacks do not await: a file
/// is read on the loop's thread (`sockeye serve --dir` is for development
/// and demos; a loaded server's files belong on a file server).
pub fn response_now(request: &Request<()>, site: &Site) -> Response<Bytes> {
    let target = resolve(request, site);
    let contents = match &target {
        Target::File(path) => Some(std::fs::read(path)),
        _ => None,
    };
    finish_response(target, contents, site)
}

fn finish_response(
    target: Target,
    contents: Option<io::Result<Vec<u8>>>,
    site: &Site,
) -> Response<Bytes> {
    let mut response = match target {
        Target::Page => page_response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            site.page.clone(),
        ),
        Target::File(path) => match contents {
            Some(Ok(contents)) => {
                page_response(StatusCode::OK, content_type(&path), contents.into())
            }
            _ => plain(StatusCode::FORBIDDEN, "Forbidden"),
        },
        Target::Redirect(location) => {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved");
            if let Ok(location) = HeaderValue::try_from(location) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
        }
        Target::Status(status) => {
            let mut response = plain(status, status.canonical_reason().unwrap_or("error"));
            if status == StatusCode::METHOD_NOT_ALLOWED {
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            response
        }
    };
    if let Ok(date) = HeaderValue::try_from(httpdate::fmt_http_date(SystemTime::now())) {
        response.headers_mut().insert(DATE, date);
    }
    response.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A 200-style response with its body.
fn page_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let length = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Answers a broken WebSocket request (see [`crate::serve`]) with 426
/// Upgrade Required, naming the protocol (`Upgrade: websocket`, listed in
/// `Connection` as RFC 7230 section 6.7 asks) and the version this server
/// speaks (`Sec-WebSocket-Version: 13`), and shuts the connection down.
pub async fn upgrade_required<S>(stream: &mut S, request: &Request<()>) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let response = upgrade_required_response();
    let status = send_response(stream, response, request.method() == Method::HEAD).await?;
    let _ = stream.shutdown().await;
    Ok(status)
}

/// The 426 of [`upgrade_required`], as a value (the event loop writes it).
pub fn upgrade_required_response() -> Response<Bytes> {
    let mut response = plain(
        StatusCode::UPGRADE_REQUIRED,
        "a WebSocket request needs \"Upgrade: websocket\" and \"Connection: Upgrade\"",
    );
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, close"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    response
}

/// Answers a WebSocket request for a resource this server does not have
/// (RFC 6455 section 4.2.2: the server may answer with any HTTP status
/// other than 101) with 404 and `why`, and shuts the connection down.
pub async fn not_found<S>(
    stream: &mut S,
    request: &Request<()>,
    why: &str,
) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let mut response = plain(StatusCode::NOT_FOUND, why);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    let status = send_response(stream, response, request.method() == Method::HEAD).await?;
    let _ = stream.shutdown().await;
    Ok(status)
}

/// Maps the request to what to send, without touching the file contents.
fn resolve(request: &Request<()>, site: &Site) -> Target {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Target::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let raw_path = request.uri().path();
    let Some(path) = percent_decode(raw_path) else {
        return Target::Status(StatusCode::BAD_REQUEST);
    };
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Target::Status(StatusCode::FORBIDDEN),
            _ if segment.contains(['\\', '\0']) => return Target::Status(StatusCode::FORBIDDEN),
            _ => segments.push(segment),
        }
    }
    if segments == [PAGE_PATH.trim_matches('/')] {
        return if raw_path.ends_with('/') {
            Target::Page
        } else {
            Target::Redirect(PAGE_PATH.to_owned())
        };
    }
    let Some(root) = &site.root else {
        return if segments.is_empty() {
            Target::Page
        } else {
            Target::Status(StatusCode::NOT_FOUND)
        };
    };
    let mut candidate = root.clone();
    candidate.extend(&segments);
    let Ok(mut real) = candidate.canonicalize() else {
        return Target::Status(StatusCode::NOT_FOUND);
    };
    if !real.starts_with(root) {
        return Target::Status(StatusCode::FORBIDDEN);
    }
    if real.is_dir() {
        if !raw_path.ends_with('/') {
            return Target::Redirect(format!("{raw_path}/"));
        }
        real.push("index.html");
        if !real.is_file() {
            // The root without an index.html shows the built-in page.
            return if segments.is_empty() {
                Target::Page
            } else {
                Target::Status(StatusCode::NOT_FOUND)
            };
        }
    }
    if real.is_file() {
        Target::File(real)
    } else {
        Target::Status(StatusCode::NOT_FOUND)
    }
}

/// `%41` becomes `A`; `None` for a malformed escape or a result that is
/// not UTF-8.
pub fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The Content-Type for a file name's extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("pdf") => "application/pdf",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// A short `text/plain` response.
fn plain(status: StatusCode, text: &str) -> Response<Bytes> {
    sockeye::proto::handshake::rejection(status, text)
}

/// Sends a complete in-memory response.
async fn send_response<S>(
    stream: &mut S,
    response: Response<Bytes>,
    head_only: bool,
) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let status = response.status();
    let (parts, body) = response.into_parts();
    let mut head = Response::from_parts(parts, ());
    add_common_headers(&mut head, None);
    let mut bytes = Vec::with_capacity(256 + body.len());
    sockeye::proto::handshake::write_response(&head, &mut bytes);
    if !head_only {
        bytes.extend_from_slice(&body);
    }
    write_all(stream, &bytes).await?;
    Ok(status)
}

/// Sends `body` with a 200-style head.
async fn send<S>(
    stream: &mut S,
    status: StatusCode,
    content_type: &'static str,
    modified: Option<SystemTime>,
    body: &[u8],
    head_only: bool,
) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let mut head = Response::new(());
    *head.status_mut() = status;
    let headers = head.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    add_common_headers(&mut head, modified);
    let mut bytes = Vec::with_capacity(256);
    sockeye::proto::handshake::write_response(&head, &mut bytes);
    if !head_only {
        bytes.extend_from_slice(body);
    }
    write_all(stream, &bytes).await?;
    Ok(status)
}

/// Streams a file: the head with its length, then its bytes.
async fn send_file<S>(stream: &mut S, path: &Path, head_only: bool) -> io::Result<StatusCode>
where
    S: AsyncWrite + Unpin,
{
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        let response = plain(StatusCode::FORBIDDEN, "Forbidden");
        return send_response(stream, response, head_only).await;
    };
    let metadata = file.metadata().await?;
    let mut head = Response::new(());
    let headers = head.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(metadata.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    add_common_headers(&mut head, metadata.modified().ok());
    let mut bytes = Vec::with_capacity(256);
    sockeye::proto::handshake::write_response(&head, &mut bytes);
    stream.write_all(&bytes).await?;
    if !head_only {
        tokio::io::copy(&mut file, stream).await?;
    }
    stream.flush().await?;
    Ok(StatusCode::OK)
}

/// `Date`, `Last-Modified`, `Connection: close` (unless the response has
/// its own) and `nosniff`.
fn add_common_headers(head: &mut Response<()>, modified: Option<SystemTime>) {
    let headers = head.headers_mut();
    if let Ok(date) = HeaderValue::try_from(httpdate::fmt_http_date(SystemTime::now())) {
        headers.insert(DATE, date);
    }
    if let Some(modified) = modified
        && let Ok(modified) = HeaderValue::try_from(httpdate::fmt_http_date(modified))
    {
        headers.insert(LAST_MODIFIED, modified);
    }
    // One request per connection; a 426 says `Upgrade, close` itself.
    if !headers.contains_key(CONNECTION) {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    fn site_in(dir: &Path) -> Site {
        Site::new(Some(dir), Mode::Echo).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sockeye-http-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        std::fs::write(dir.join("sub/index.html"), "<p>sub</p>").unwrap();
        dir
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2E/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%4"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }

    #[test]
    fn built_in_page_only_at_the_root() {
        let site = Site::new(None, Mode::Broadcast).unwrap();
        assert_eq!(resolve(&get("/"), &site), Target::Page);
        assert_eq!(
            resolve(&get("/x"), &site),
            Target::Status(StatusCode::NOT_FOUND)
        );
        assert!(
            std::str::from_utf8(&site.page)
                .unwrap()
                .contains("broadcast")
        );
        let post = Request::post("/").body(()).unwrap();
        assert_eq!(
            resolve(&post, &site),
            Target::Status(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn files_directories_and_traversal() {
        let dir = scratch("resolve");
        let site = site_in(&dir);
        let root = dir.canonicalize().unwrap();
        assert_eq!(
            resolve(&get("/a.txt"), &site),
            Target::File(root.join("a.txt"))
        );
        assert_eq!(
            resolve(&get("/sub"), &site),
            Target::Redirect("/sub/".into())
        );
        assert_eq!(
            resolve(&get("/sub/"), &site),
            Target::File(root.join("sub/index.html"))
        );
        // No index.html at the root: the built-in page.
        assert_eq!(resolve(&get("/"), &site), Target::Page);
        assert_eq!(resolve(&get("/_sockeye/"), &site), Target::Page);
        std::fs::write(dir.join("index.html"), "<p>mine</p>").unwrap();
        assert_eq!(
            resolve(&get("/"), &site),
            Target::File(root.join("index.html"))
        );
        // The built-in page is still there, and wins over a directory of
        // that name.
        std::fs::create_dir_all(dir.join("_sockeye")).unwrap();
        assert_eq!(resolve(&get("/_sockeye/"), &site), Target::Page);
        assert_eq!(
            resolve(&get("/_sockeye"), &site),
            Target::Redirect("/_sockeye/".into())
        );
        assert_eq!(
            resolve(&get("/missing"), &site),
            Target::Status(StatusCode::NOT_FOUND)
        );
        for path in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/sub/../../x",
            "/a%5cb",
        ] {
            assert_eq!(
                resolve(&get(path), &site),
                Target::Status(StatusCode::FORBIDDEN),
                "{path}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_out_of_the_root_are_refused() {
        let dir = scratch("symlink");
        std::os::unix::fs::symlink("/etc", dir.join("escape")).unwrap();
        let site = site_in(&dir);
        assert_eq!(
            resolve(&get("/escape/"), &site),
            Target::Status(StatusCode::FORBIDDEN)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
