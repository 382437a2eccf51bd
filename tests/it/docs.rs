//! The docs say what is there: every relative link and every repository path they name in
//! backticks (`src/...`, `docs/...`, `config/...`) exists, and every TOML example reads as
//! a config driftd takes (a fragment completed with the one model it needs, as a reader
//! would paste it into theirs).

use std::path::PathBuf;

use driftd::config::Settings;

use crate::helpers::root;

/// README.md, docs/*.md and the other READMEs a reader follows.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages: Vec<PathBuf> = ["README.md", "examples/README.md", "fuzz/README.md", "datasets/README.md"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages
}

/// The targets of a page's Markdown links, `[text](target)`, anchors cut.
fn links(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let end = rest.find(')')?;
            let target = rest[..end].split('#').next().unwrap_or("");
            (!target.is_empty() && !target.contains(char::is_whitespace)).then_some(target)
        })
        .collect()
}

/// Repository paths a page names in backticks.
fn repo_paths(text: &str) -> Vec<&str> {
    const TOP: [&str; 12] = [
        "src/",
        "tests/",
        "docs/",
        "config/",
        "benches/",
        "scripts/",
        "examples/",
        "deploy/",
        "dashboards/",
        "fuzz/",
        "datasets/",
        ".ci/",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| TOP.iter().any(|t| s.starts_with(t)))
        .filter(|s| s.chars().all(|c| c.is_alphanumeric() || "_./-".contains(c)))
        .map(|s| s.trim_end_matches(['/', '.']))
        .collect()
}

/// Whether `path` lies under what `.gitignore` leaves out from the root (`/benches/data`:
/// what the scripts make), which a fresh clone does not have.
fn made_here(path: &str) -> bool {
    let ignore = std::fs::read_to_string(root().join(".gitignore")).unwrap_or_default();
    ignore.lines().filter_map(|l| l.strip_prefix('/')).any(|dir| path == dir || path.starts_with(&format!("{dir}/")))
}

#[test]
fn every_link_and_path_the_docs_name_exists() {
    let root = root();
    let mut missing = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = page.parent().unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !dir.join(target).exists() {
                missing.push(format!("{}: link {target}", page.strip_prefix(&root).unwrap().display()));
            }
        }
        for path in repo_paths(&text) {
            if !root.join(path).exists() && !made_here(path) {
                missing.push(format!("{}: path {path}", page.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "the docs name what is not there:\n{}", missing.join("\n"));
}

/// The TOML blocks of a page.
fn toml_blocks(text: &str) -> Vec<&str> {
    text.split("```toml\n").skip(1).filter_map(|b| b.split("```").next()).collect()
}

#[test]
fn every_toml_example_is_a_config_driftd_takes() {
    let root = root();
    let reference = root.join("datasets/california_housing_reference.csv");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in toml_blocks(&text) {
            // a fragment goes into a config that has a model
            let config = if block.contains("[[models]]") {
                block.to_string()
            } else {
                format!("{block}\n[[models]]\nname = \"m\"\nreference = \"{}\"\n", reference.display())
            };
            checked += 1;
            if let Err(e) = Settings::from_toml(&config) {
                wrong.push(format!("{}: {e:#}\n{block}", page.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(checked >= 5, "the docs' TOML examples were not found ({checked})");
    assert!(wrong.is_empty(), "TOML examples driftd refuses:\n{}", wrong.join("\n---\n"));
}

#[test]
fn the_readers_find_links_paths_and_blocks() {
    let text = "see [the guide](docs/tuning.md#top) and `src/lib.rs`, not `cargo run`\n```toml\na = 1\n```\n";
    assert_eq!(links(text), ["docs/tuning.md"]);
    assert_eq!(repo_paths(text), ["src/lib.rs"]);
    assert_eq!(toml_blocks(text), ["a = 1\n"]);
    assert!(made_here("benches/data/logs_1m.jsonl") && !made_here("benches/database.rs"));
}
