//! The layers of `docs/architecture.md` hold: every `crate::` path in `src/` (test modules
//! aside) names a module of a lower layer than its own file's, so no module imports one
//! above it and no two import each other; every top-level module is in a layer. Inside a
//! folder, no two files (or subfolders) need each other through `super::`, however far
//! round.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::helpers::root;

/// The layers, lowest first: each module's layer, from the doc's `layers` block.
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let block = doc.split("```layers\n").nth(1).expect("docs/architecture.md has a ```layers block");
    let block = &block[..block.find("```").expect("the layers block ends")];
    let mut layers = BTreeMap::new();
    for (i, line) in block.lines().enumerate() {
        for module in line.split_whitespace() {
            assert!(layers.insert(module.to_string(), i).is_none(), "{module} is in two layers");
        }
    }
    layers
}

/// The top-level modules `src/lib.rs` declares.
fn modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';').to_string()).collect()
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code (its test module aside) names by `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `crate::` itself, not the end of a longer name (`mycrate::`)
            code[..*at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
        .map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_module_uses_one_of_its_own_layer_or_above() {
    let layers = layers();
    let modules = modules();
    let unlisted: Vec<&String> = modules.iter().filter(|m| !layers.contains_key(*m)).collect();
    assert!(unlisted.is_empty(), "modules in no layer of docs/architecture.md: {unlisted:?}");
    let gone: Vec<&String> = layers.keys().filter(|m| !modules.contains(*m)).collect();
    assert!(gone.is_empty(), "docs/architecture.md lists modules src/lib.rs does not declare: {gone:?}");
    let src = root().join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in &all {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        let Some(&own) = layers.get(module) else { continue }; // main.rs, lib.rs
        let text = std::fs::read_to_string(path).unwrap();
        for target in imports(&text) {
            let Some(&theirs) = layers.get(&target) else { continue };
            if target != module && theirs >= own {
                wrong.push(format!("{} ({module}, layer {own}) uses {target} (layer {theirs})", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of docs/architecture.md:\n{}", wrong.join("\n"));
}

/// The siblings a file directly in a folder names through `super::` (`super::x::Y`, or `x`
/// inside `use super::{x::Y, ...}`), among `siblings`.
fn sibling_imports(text: &str, siblings: &BTreeSet<String>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("super::") {
        if code[..at].chars().next_back().is_some_and(|c| ident(c) || c == ':') {
            continue; // `super::super::`, or a longer path
        }
        let rest = &code[at + "super::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            // `use super::{a::X, b, c::{Y, Z}}`: the names a path goes on from
            Some(group) => {
                top_level_items(group).into_iter().filter_map(|p| p.split_once("::").map(|(n, _)| n)).collect()
            }
            None => {
                let name_end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
                if rest[name_end..].starts_with("::") {
                    vec![&rest[..name_end]]
                } else {
                    Vec::new()
                }
            }
        };
        found.extend(names.into_iter().filter(|n| siblings.contains(*n)).map(str::to_string));
    }
    found
}

/// The items of a `{...}` group whose opening brace `group` follows, split at its own
/// commas (not those of groups inside it), trimmed.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut from, mut items) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(group[from..i].trim());
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(group[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// A circle through `edges` from `start` back to it, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_string()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_two_files_of_a_folder_need_each_other() {
    let mut dirs = vec![root().join("src")];
    let mut circles = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mut siblings = BTreeSet::new();
        let mut direct = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                dirs.push(path);
                siblings.insert(name);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !["mod", "lib", "main", "tests"].contains(&name.as_str())
            {
                siblings.insert(name.clone());
                direct.push((name, path));
            }
        }
        let mut edges = BTreeMap::new();
        for (name, path) in &direct {
            let text = std::fs::read_to_string(path).unwrap();
            let mut to = sibling_imports(&text, &siblings);
            to.remove(name);
            edges.insert(name.clone(), to);
        }
        for name in edges.keys() {
            if let Some(c) = circle(&edges, name) {
                circles.push(format!("{}: {}", dir.strip_prefix(root()).unwrap().display(), c.join(" -> ")));
            }
        }
    }
    assert!(circles.is_empty(), "files that need each other:\n{}", circles.join("\n"));
}

#[test]
fn the_sibling_reader_sees_paths_and_groups() {
    let siblings: BTreeSet<String> = ["route", "model", "merge", "pair"].iter().map(|s| s.to_string()).collect();
    let text = "use super::route::Pipeline;\nuse super::{merge::{A, B}, model::Track};\n\
                fn f() { super::super::pair::x(); super::pair::y(); }\n#[cfg(test)]\nmod tests { use super::*; }\n";
    let found = sibling_imports(text, &siblings);
    assert_eq!(found, ["merge", "model", "pair", "route"].iter().map(|s| s.to_string()).collect());
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circle(&edges, "a"), Some(vec!["a".into(), "b".into(), "a".into()]));
    edges.insert("b".to_string(), BTreeSet::new());
    assert_eq!(circle(&edges, "a"), None);
}

#[test]
fn the_import_reader_sees_paths_and_skips_tests() {
    let text = "use crate::fs::write_synced;\nfn f() { crate::time::now_ms(); mycrate::x(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::app::x;\n}\n";
    assert_eq!(imports(text), ["fs", "time"].iter().map(|s| s.to_string()).collect());
}
