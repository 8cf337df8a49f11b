//! Test payloads: deterministic, position-dependent bytes (a shifted or
//! truncated echo does not compare equal) and multi-byte UTF-8 texts.

/// The sizes of the text and binary echo checks, by check-name suffix.
pub fn size(name: &str) -> Option<usize> {
    match name {
        "0" => Some(0),
        "125" => Some(125),
        "126" => Some(126),
        "65535" => Some(65535),
        "65536" => Some(65536),
        "1MiB" => Some(1 << 20),
        "16MiB" => Some(16 << 20),
        _ => None,
    }
}

/// `len` bytes from a xorshift generator seeded by the length.
pub fn binary(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ len as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// `len` bytes of printable ASCII (a UTF-8 text of exactly `len` bytes).
pub fn text(len: usize) -> String {
    binary(len)
        .into_iter()
        .map(|byte| char::from(b' ' + byte % 95))
        .collect()
}

/// Texts with 2-, 3- and 4-byte sequences, one of them longer than 65535
/// bytes so that its characters straddle frame and read boundaries.
pub fn utf8_texts() -> Vec<String> {
    let mixed = "héllo wörld € 𝄞 ✓ 🦀 Ωμέγα 日本語 ";
    vec![
        "é".to_owned(),
        "€".to_owned(),
        "𝄞".to_owned(),
        "\u{10FFFF}\u{FFFD}\u{7FF}\u{800}\u{FFFF}\u{10000}".to_owned(),
        mixed.to_owned(),
        mixed.repeat(65536 / mixed.len() + 3),
    ]
}

/// Where two byte strings first differ, for failure messages.
pub fn describe_mismatch(sent: &[u8], received: &[u8]) -> String {
    let first = sent
        .iter()
        .zip(received)
        .position(|(a, b)| a != b)
        .unwrap_or(sent.len().min(received.len()));
    format!(
        "echo differs: sent {} bytes, received {} bytes, first difference at byte {first}",
        sent.len(),
        received.len()
    )
}
