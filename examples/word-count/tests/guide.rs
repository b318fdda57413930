//! `docs/blueprint-guide.md` shows this crate's code: every ```rust and ```toml block in it must appear verbatim in
//! one of the crate's files, which compile and are tested. Change the code, then copy it into the guide.

/// The guide, and the files its blocks are copied from (`include_str!`: editing any of them rebuilds this test).
const GUIDE: &str = include_str!("../../../docs/blueprint-guide.md");
const SOURCES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../src/lib.rs")),
    ("src/tests.rs", include_str!("../src/tests.rs")),
    ("tests/network.rs", include_str!("network.rs")),
    ("Cargo.toml", include_str!("../Cargo.toml")),
    ("blueprint.toml", include_str!("../blueprint.toml")),
];

/// A fenced code block: its language, the guide line it starts on, its text (each line ending in `\n`).
struct Block {
    language: String,
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(language)) => {
                open = Some(Block { language: language.trim().to_owned(), line: index + 1, text: String::new() })
            }
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "docs/blueprint-guide.md ends inside a code block");
    blocks
}

#[test]
fn every_rust_and_toml_block_of_the_guide_is_code_of_this_crate() {
    let checked: Vec<Block> =
        blocks(GUIDE).into_iter().filter(|b| b.language == "rust" || b.language == "toml").collect();
    let mut problems = Vec::new();
    for block in &checked {
        if !SOURCES.iter().any(|(_, source)| source.contains(&block.text)) {
            // Name the first line that is in no file: that is where the guide and the code parted.
            let stray = block.text.lines().find(|line| !SOURCES.iter().any(|(_, source)| source.contains(line)));
            problems.push(format!(
                "the ```{} block at docs/blueprint-guide.md:{} is not in {}; {}",
                block.language,
                block.line,
                SOURCES.iter().map(|(path, _)| *path).collect::<Vec<_>>().join(", "),
                match stray {
                    Some(line) => format!("no file has its line {line:?}"),
                    None => "its lines exist, but not in this order".to_owned(),
                }
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked.iter().filter(|b| b.language == "rust").count() >= 8, "the guide shows the example's code");
}

#[test]
fn the_guide_shows_the_whole_network_test_and_manifest() {
    let texts: Vec<String> = blocks(GUIDE).into_iter().map(|b| b.text).collect();
    for (path, source) in SOURCES.iter().filter(|(path, _)| ["tests/network.rs", "blueprint.toml"].contains(path)) {
        assert!(texts.iter().any(|text| text == source), "docs/blueprint-guide.md must show all of {path}");
    }
}

#[test]
fn blocks_are_found() {
    let found = blocks("text\n```rust\nfn a() {}\n\n```\n```sh\nls\n```\n");
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].language.as_str(), found[0].line, found[0].text.as_str()), ("rust", 2, "fn a() {}\n\n"));
    assert_eq!((found[1].language.as_str(), found[1].text.as_str()), ("sh", "ls\n"));
}
