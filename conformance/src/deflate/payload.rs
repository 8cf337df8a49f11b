//! The payloads of sections 12 and 13, synthesized in code (no file is
//! downloaded or committed): five corpora shaped like Autobahn's test data
//! (a JSON document, a bitmap, German prose, an HTML page, audio), each
//! 256 KiB and the same on every run. A case's messages are consecutive
//! slices of its corpus, wrapping around at the end, as Autobahn takes
//! them from its files; text slices are cut at character boundaries.

use crate::wire::Rng;

/// The size of every corpus: twice the largest message.
pub const CORPUS_LEN: usize = 256 * 1024;

/// What a case's messages are cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// A JSON array of records (text; some names have non-ASCII letters).
    Json,
    /// A 512x512 8-bit greyscale bitmap with its BMP header (binary).
    Bitmap,
    /// German prose with umlauts and sharp s (text, multi-byte UTF-8).
    German,
    /// An HTML page (text).
    Html,
    /// 16-bit stereo PCM: tones under noise, hard to compress (binary).
    Audio,
}

impl PayloadKind {
    /// Whether its messages are text (otherwise binary).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            PayloadKind::Json | PayloadKind::German | PayloadKind::Html
        )
    }

    /// A few words for reports.
    pub fn describe(self) -> &'static str {
        match self {
            PayloadKind::Json => "JSON records (text)",
            PayloadKind::Bitmap => "512x512 greyscale bitmap (binary)",
            PayloadKind::German => "German prose, multi-byte UTF-8 (text)",
            PayloadKind::Html => "HTML page (text)",
            PayloadKind::Audio => "noisy 16-bit PCM audio (binary)",
        }
    }

    /// The corpus, [`CORPUS_LEN`] bytes (text corpora end on a character
    /// boundary).
    pub fn corpus(self) -> Vec<u8> {
        let mut rng = Rng::from_str_seed(self.describe());
        let corpus = match self {
            PayloadKind::Json => text_corpus(&mut rng, json_record),
            PayloadKind::German => text_corpus(&mut rng, german_paragraph),
            PayloadKind::Html => html(&mut rng),
            PayloadKind::Bitmap => bitmap(&mut rng),
            PayloadKind::Audio => audio(&mut rng),
        };
        assert_eq!(corpus.len(), CORPUS_LEN, "{self:?} corpus");
        if self.is_text() {
            assert!(std::str::from_utf8(&corpus).is_ok(), "{self:?} corpus");
        }
        corpus
    }
}

/// Cuts consecutive messages of one length from a corpus.
#[derive(Debug, Clone)]
pub struct Messages {
    corpus: Vec<u8>,
    text: bool,
    len: usize,
    next: usize,
}

impl Messages {
    /// Messages of `len` bytes of `kind`.
    pub fn new(kind: PayloadKind, len: usize) -> Messages {
        assert!(len <= CORPUS_LEN);
        Messages {
            corpus: kind.corpus(),
            text: kind.is_text(),
            len,
            next: 0,
        }
    }

    /// The next message: the corpus from where the last one ended, wrapping
    /// around; for text, bytes of characters cut at either end become
    /// spaces, so it is valid UTF-8 of exactly the length asked.
    pub fn next_message(&mut self) -> Vec<u8> {
        let start = self.next;
        let end = start + self.len;
        let mut message = if end <= self.corpus.len() {
            self.corpus[start..end].to_vec()
        } else {
            let mut message = self.corpus[start..].to_vec();
            message.extend_from_slice(&self.corpus[..end - self.corpus.len()]);
            message
        };
        self.next = end % self.corpus.len();
        if self.text {
            repair_utf8(&mut message);
        }
        message
    }
}

/// Replaces the bytes of characters cut at either end of `text` with
/// spaces.
fn repair_utf8(text: &mut [u8]) {
    for byte in text.iter_mut() {
        if *byte & 0xc0 != 0x80 {
            break;
        }
        *byte = b' ';
    }
    let len = text.len();
    if let Some(lead) = (len.saturating_sub(4)..len)
        .rev()
        .find(|&i| text[i] & 0xc0 != 0x80)
    {
        let width = match text[lead] {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        if lead + width > len {
            text[lead..].fill(b' ');
        }
    }
    debug_assert!(std::str::from_utf8(text).is_ok());
}

fn pick<'a>(rng: &mut Rng, words: &[&'a str]) -> &'a str {
    words[(rng.next_u64() % words.len() as u64) as usize]
}

fn below(rng: &mut Rng, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// Pieces from `piece` until [`CORPUS_LEN`] bytes; the last piece is cut at
/// a character boundary and padded with spaces.
fn text_corpus(rng: &mut Rng, piece: fn(&mut Rng, &mut String)) -> Vec<u8> {
    let mut text = String::with_capacity(CORPUS_LEN + 4096);
    while text.len() < CORPUS_LEN {
        piece(rng, &mut text);
    }
    let mut cut = CORPUS_LEN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let mut bytes = text.into_bytes();
    bytes.resize(CORPUS_LEN, b' ');
    bytes
}

const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Björn",
    "Chloé",
    "Dmitri",
    "Élodie",
    "Farid",
    "Greta",
    "Håkon",
    "Ines",
    "José",
    "Katarzyna",
    "Lars",
    "Mañuel",
    "Nadia",
    "Øystein",
    "Paul",
    "Quentin",
    "Renée",
    "Søren",
    "Tomás",
    "Ulrike",
    "Zoë",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Novák",
    "Dubois",
    "García",
    "Kowalski",
    "Johansson",
    "Rossi",
    "Smith",
    "Łukasiewicz",
    "Ødegaard",
    "Peña",
    "Nguyen",
    "O'Brien",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "reprehenderit",
    "voluptate",
    "velit",
];
const COMPANIES: &[&str] = &[
    "ZOLAREX",
    "QUINTITY",
    "ACCUPRINT",
    "GEEKOLOGY",
    "ZILLACON",
    "ISOTRONIC",
    "MEDIFAX",
    "OVERFORK",
];

fn json_record(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write as _;
    if out.is_empty() {
        out.push('[');
    } else {
        out.push_str(",\n");
    }
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let company = pick(rng, COMPANIES);
    let _ = write!(
        out,
        "{{\"_id\":\"{:016x}{:08x}\",\"index\":{},\"isActive\":{},\"balance\":\"${},{:03}.{:02}\",\
         \"age\":{},\"eyeColor\":\"{}\",\"name\":\"{first} {last}\",\"company\":\"{company}\",\
         \"email\":\"{}.{}@{}.example\",\"latitude\":{}.{:06},\"longitude\":-{}.{:06},\"tags\":[",
        rng.next_u64(),
        rng.next_u64() as u32,
        below(rng, 100_000),
        below(rng, 2) == 0,
        below(rng, 10),
        below(rng, 1000),
        below(rng, 100),
        20 + below(rng, 50),
        pick(rng, &["blue", "brown", "green"]),
        first.to_lowercase(),
        last.to_lowercase().replace('\'', ""),
        company.to_lowercase(),
        below(rng, 90),
        below(rng, 1_000_000),
        below(rng, 180),
        below(rng, 1_000_000),
    );
    for tag in 0..1 + below(rng, 6) {
        if tag > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\"", pick(rng, WORDS));
    }
    out.push_str("],\"about\":\"");
    for word in 0..5 + below(rng, 25) {
        if word > 0 {
            out.push(' ');
        }
        out.push_str(pick(rng, WORDS));
    }
    out.push_str(".\"}");
}

const GERMAN: &[&str] = &[
    "Größe",
    "Übermut",
    "schön",
    "Straße",
    "Mädchen",
    "Frühling",
    "Bäume",
    "heißt",
    "Tür",
    "Glück",
    "über",
    "für",
    "Häuser",
    "Öl",
    "Fuß",
    "müssen",
    "können",
    "hören",
    "Würde",
    "Gefühl",
    "Nacht",
    "und",
    "der",
    "die",
    "das",
    "ist",
    "nicht",
    "mit",
    "sich",
    "auch",
    "wie",
    "wenn",
    "noch",
    "Geist",
    "Welt",
    "Herz",
    "Himmel",
    "Erde",
    "weiß",
    "süß",
    "Märchen",
    "Küche",
    "Löwe",
    "Gedächtnis",
    "Wissenschaft",
    "Schüler",
    "Ärger",
    "Überfluss",
    "Äpfel",
];

fn german_paragraph(rng: &mut Rng, out: &mut String) {
    for _ in 0..1 + below(rng, 6) {
        let mut first = true;
        for _ in 0..4 + below(rng, 12) {
            if !first {
                out.push(' ');
            }
            let word = pick(rng, GERMAN);
            if first {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push_str(word);
            }
            first = false;
        }
        out.push_str(pick(rng, &[". ", "! ", "? ", "; ", ", — "]));
    }
    out.push_str("\n\n");
}

fn html(rng: &mut Rng) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Conformance page</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n\
         </head>\n<body>\n",
    );
    let mut section = 0;
    while page.len() < CORPUS_LEN {
        section += 1;
        let _ = write!(
            page,
            "<div class=\"section section-{}\" id=\"s{section}\">\n<h2>{} {}</h2>\n",
            below(rng, 8),
            pick(rng, WORDS),
            pick(rng, WORDS)
        );
        for _ in 0..1 + below(rng, 4) {
            page.push_str("<p class=\"text\">");
            for _ in 0..10 + below(rng, 40) {
                if below(rng, 12) == 0 {
                    let _ = write!(
                        page,
                        "<a href=\"/article/{}/{}.html\">{}</a> ",
                        below(rng, 1000),
                        pick(rng, WORDS),
                        pick(rng, WORDS)
                    );
                } else {
                    page.push_str(pick(rng, WORDS));
                    page.push(' ');
                }
            }
            page.push_str("</p>\n");
        }
        page.push_str("<ul class=\"links\">\n");
        for _ in 0..below(rng, 6) {
            let _ = writeln!(
                page,
                "  <li><a href=\"#s{}\" title=\"{}\">{}</a></li>",
                below(rng, section + 1),
                pick(rng, WORDS),
                pick(rng, WORDS)
            );
        }
        page.push_str("</ul>\n</div>\n");
    }
    let mut bytes = page.into_bytes();
    bytes.truncate(CORPUS_LEN);
    bytes
}

fn bitmap(rng: &mut Rng) -> Vec<u8> {
    const SIDE: usize = 512;
    let mut image = Vec::with_capacity(CORPUS_LEN + 2048);
    // BITMAPFILEHEADER + BITMAPINFOHEADER, 8 bits per pixel, a grey palette.
    let data_offset: u32 = 14 + 40 + 1024;
    let file_size = data_offset + (SIDE * SIDE) as u32;
    image.extend_from_slice(b"BM");
    image.extend_from_slice(&file_size.to_le_bytes());
    image.extend_from_slice(&[0; 4]);
    image.extend_from_slice(&data_offset.to_le_bytes());
    image.extend_from_slice(&40u32.to_le_bytes());
    image.extend_from_slice(&(SIDE as u32).to_le_bytes());
    image.extend_from_slice(&(SIDE as u32).to_le_bytes());
    image.extend_from_slice(&1u16.to_le_bytes());
    image.extend_from_slice(&8u16.to_le_bytes());
    image.extend_from_slice(&[0; 24]);
    for grey in 0..=255u8 {
        image.extend_from_slice(&[grey, grey, grey, 0]);
    }
    for y in 0..SIDE {
        for x in 0..SIDE {
            // Smooth shapes (a gradient, rings) with a little noise.
            let (dx, dy) = (x as i64 - 200, y as i64 - 300);
            let ring = ((dx * dx + dy * dy) / 97) % 64;
            let base = (x / 4 + y / 3) as i64 + ring;
            let noise = (rng.next_u64() % 6) as i64;
            image.push((base + noise).clamp(0, 255) as u8);
        }
    }
    image.truncate(CORPUS_LEN);
    image
}

fn audio(rng: &mut Rng) -> Vec<u8> {
    let mut samples = Vec::with_capacity(CORPUS_LEN);
    let mut n = 0u32;
    while samples.len() < CORPUS_LEN {
        let t = f64::from(n) / 44_100.0;
        let tone = 6000.0 * (t * 440.0 * std::f64::consts::TAU).sin()
            + 3000.0 * (t * 659.25 * std::f64::consts::TAU).sin();
        for channel in 0..2 {
            let noise = (rng.next_u64() % 4096) as f64 - 2048.0;
            let value = (tone * if channel == 0 { 1.0 } else { 0.8 } + noise) as i16;
            samples.extend_from_slice(&value.to_le_bytes());
        }
        n += 1;
    }
    samples.truncate(CORPUS_LEN);
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_exact_and_text_is_utf8() {
        for kind in [
            PayloadKind::Json,
            PayloadKind::Bitmap,
            PayloadKind::German,
            PayloadKind::Html,
            PayloadKind::Audio,
        ] {
            for len in [16, 64, 1000, 131_072] {
                let mut messages = Messages::new(kind, len);
                for _ in 0..5 {
                    let message = messages.next_message();
                    assert_eq!(message.len(), len);
                    if kind.is_text() {
                        assert!(std::str::from_utf8(&message).is_ok());
                    }
                }
            }
        }
        let german = PayloadKind::German.corpus();
        assert!(german.iter().filter(|byte| **byte >= 0x80).count() > 1000);
    }
}
