//! The README's Rust snippets are example files that CI builds: each
//! ```rust block must be, byte for byte, one of `crates/sockeye/examples/`.

use std::path::Path;

#[test]
fn every_rust_snippet_in_the_readme_is_an_example_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples: Vec<(String, String)> = std::fs::read_dir(root.join("crates/sockeye/examples"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect();
    let mut snippets = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```rust\n") {
        let body = &rest[start + "```rust\n".len()..];
        let end = body.find("\n```").expect("a closed code block") + 1;
        let snippet = &body[..end];
        assert!(
            examples.iter().any(|(_, text)| text == snippet),
            "this README snippet is not an example file (copy it into crates/sockeye/examples/):\n{snippet}"
        );
        snippets += 1;
        rest = &body[end..];
    }
    assert!(snippets >= 2, "the README shows a server and a client");
}
