//! Connecting through proxies: HTTP CONNECT and SOCKS5.
