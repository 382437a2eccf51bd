//! The layers of `docs/architecture.md` hold: every `crate::` path in `src/` (test modules
//! aside) names a module of a lower layer than its own file's, so no module imports one
//! above it and no two import each other; every top-level module is in a layer.

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

#[test]
fn the_import_reader_sees_paths_and_skips_tests() {
    let text = "use crate::fs::write_synced;\nfn f() { crate::time::now_ms(); mycrate::x(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::app::x;\n}\n";
    assert_eq!(imports(text), ["fs", "time"].iter().map(|s| s.to_string()).collect());
}
