//! The layering rule of `docs/ARCHITECTURE.md`, checked on the sources: a layer uses only
//! the layers before it in [`LAYERS`]; the core and the domain do no I/O (no async runtime,
//! database, HTTP, mail, files or sockets); and no two top-level modules of one layer use
//! each other, directly or through others (no import circle).
//!
//! The check reads every `.rs` file under `src/`, drops comments and string literals, and
//! looks at every `crate::` path (including `crate::{a, b::c}` groups) and every path that
//! names a forbidden crate or module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a file may use its own layer and those before it.
const LAYERS: &[&str] = &[
    "core", "domain", "config", "infra", "app", "http", "bench", "cli",
];

/// Layers that must do no I/O.
const PURE_LAYERS: &[&str] = &["core", "domain"];

/// Paths a pure layer must not name: the async runtime, the database, HTTP, mail, object
/// storage, and the standard library's files, sockets, processes and environment.
const FORBIDDEN_IN_PURE: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "object_store",
    "lettre",
    "axum",
    "hyper",
    "tower",
    "tower_http",
    "cryptoki",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
];

/// One broken rule, as a sentence naming the file.
type Violation = String;

/// The layer of a file, from its path below `src/`; `None` for the crate root files.
fn layer_of(relative: &Path) -> Option<&'static str> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    LAYERS.iter().copied().find(|l| *l == first)
}

/// The top-level module of a file below `src/` (`core::bundle` for
/// `core/bundle/verify.rs`), or the layer itself for its `mod.rs`.
fn module_of(relative: &Path) -> Option<String> {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let layer = *parts.first()?;
    match parts.get(1) {
        None => None,
        Some(second) if parts.len() == 2 && (*second == "mod.rs") => Some(layer.to_string()),
        Some(second) => Some(format!("{layer}::{}", second.trim_end_matches(".rs"))),
    }
}

/// The source without comments, string literals and character literals, so that a doc
/// link or a message naming a module is not taken for a use of it.
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(source.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let mut depth = 0usize;
            let mut j = i;
            while j < bytes.len() {
                if source[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if source[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = j;
        } else if let Some(len) = raw_string_len(rest) {
            out.push_str("\"\"");
            i += len;
        } else if rest.starts_with('"') {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if let Some(len) = char_literal_len(rest) {
            out.push_str("' '");
            i += len;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`) at the start of `s`.
fn raw_string_len(s: &str) -> Option<usize> {
    let start = if s.starts_with("br") {
        2
    } else if s.starts_with('r') {
        1
    } else {
        return None;
    };
    let hashes = s[start..].bytes().take_while(|b| *b == b'#').count();
    if s.as_bytes().get(start + hashes) != Some(&b'"') {
        return None;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    let body = start + hashes + 1;
    s[body..].find(&close).map(|n| body + n + close.len())
}

/// Length of a character literal (`'a'`, `'\n'`, `'\u{202F}'`) at the start of `s`, not a
/// lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    chars.next().filter(|(_, c)| *c == '\'')?;
    let (_, first) = chars.next()?;
    if first == '\\' {
        let end = s[2..].find('\'')?;
        return Some(2 + end + 1);
    }
    let (at, closing) = chars.next()?;
    (closing == '\'').then_some(at + 1)
}

/// Whether `code` names `path` (`tokio`, `std::fs`) as a path: `tokio::…`, `use tokio;`,
/// or inside a `std::{…}` group for a standard-library module.
fn names_path(code: &str, path: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let direct = code.match_indices(path).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + path.len()..].chars().next();
        before.is_none_or(|c| !is_ident(c) && c != ':')
            && after.is_some_and(|c| c == ':' || c == ';' || c == ' ' || c == '}' || c == ',')
            && (code[at + path.len()..].starts_with("::")
                || code[..at].trim_end().ends_with("use")
                || code[..at].trim_end().ends_with("extern crate"))
    });
    if direct {
        return true;
    }
    let Some(module) = path.strip_prefix("std::") else {
        return false;
    };
    code.match_indices("std::{").any(|(at, _)| {
        let group = group_at(&code[at + "std::".len()..]);
        split_top_level(group)
            .iter()
            .any(|entry| first_segment(entry) == Some(module))
    })
}

/// The text of the `{…}` group at the start of `s`, without its braces.
fn group_at(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    s.get(1..).unwrap_or("")
}

/// Splits a group's entries on the commas outside nested groups.
fn split_top_level(group: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&group[start..]);
    out
}

/// The first identifier of a path entry (`bundle` in ` bundle::verify::X`).
fn first_segment(entry: &str) -> Option<&str> {
    let entry = entry.trim_start();
    let end = entry
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(entry.len());
    (end > 0).then(|| &entry[..end])
}

/// The crate paths of `code`, as `layer` or `layer::module` (the first two segments after
/// `crate::`), groups expanded.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        expand(&code[at + "crate::".len()..], String::new(), &mut out, 2);
    }
    out
}

/// Adds the paths starting at `s` (after `prefix`), down to `depth` more segments.
fn expand(s: &str, prefix: String, out: &mut BTreeSet<String>, depth: usize) {
    if s.starts_with('{') {
        for entry in split_top_level(group_at(s)) {
            expand(entry.trim_start(), prefix.clone(), out, depth);
        }
        return;
    }
    let Some(segment) = first_segment(s) else {
        if !prefix.is_empty() {
            out.insert(prefix);
        }
        return;
    };
    let path = if prefix.is_empty() {
        segment.to_string()
    } else if segment == "self" {
        out.insert(prefix);
        return;
    } else {
        format!("{prefix}::{segment}")
    };
    let rest = &s[segment.len()..];
    match rest.strip_prefix("::") {
        Some(rest) if depth > 1 => expand(rest, path, out, depth - 1),
        _ => {
            out.insert(path);
        }
    }
}

/// The rules broken by one file, given its path below `src/` and its source.
fn check_file(relative: &Path, source: &str) -> (Vec<Violation>, BTreeSet<String>) {
    let mut violations = Vec::new();
    let mut uses = BTreeSet::new();
    let Some(layer) = layer_of(relative) else {
        return (violations, uses);
    };
    let rank = |l: &str| LAYERS.iter().position(|x| *x == l);
    let own = rank(layer);
    let code = code_only(source);
    let code = code.as_str();
    let shown = relative.display();
    for path in crate_paths(code) {
        let target_layer = path.split("::").next().unwrap_or_default();
        let Some(target) = rank(target_layer) else {
            violations.push(format!(
                "{shown}: crate::{path} is outside every layer (src/<layer>/…)"
            ));
            continue;
        };
        if Some(target) > own {
            violations.push(format!(
                "{shown}: the {layer} layer uses crate::{path}, of the later {target_layer} layer"
            ));
        }
    }
    // Tests may use files and processes (outside tools cross-check the core's bytes), and
    // share fixtures between sibling modules; the code they test may do neither.
    let is_test_file = relative.file_name().is_some_and(|n| n == "tests.rs");
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    if !is_test_file {
        uses = crate_paths(code);
    }
    if PURE_LAYERS.contains(&layer) && !is_test_file {
        for forbidden in FORBIDDEN_IN_PURE {
            if names_path(code, forbidden) {
                violations.push(format!(
                    "{shown}: the {layer} layer does no I/O but names {forbidden}"
                ));
            }
        }
        if code.contains("async fn") || code.contains(".await") || code.contains("async move") {
            violations.push(format!("{shown}: the {layer} layer is not async"));
        }
    }
    (violations, uses)
}

/// Import circles between the top-level modules of one layer, each as `a → b → a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first search for a path back to `start` within its layer.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    // One name per circle: rotate it to start at its smallest module.
                    let min = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, m)| *m)
                        .map(|(i, _)| i);
                    cycle.rotate_left(min.unwrap_or(0));
                    let first = cycle[0].clone();
                    cycle.push(first);
                    found.insert(cycle.join(" → "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Every `.rs` file below `dir`, with its path relative to `root`.
pub(crate) fn sources(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push((relative, text));
        }
    }
}

/// Checks a whole tree: every file's own rules, then the circles inside each layer.
fn check_tree(files: &[(PathBuf, String)]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, source) in files {
        let (mut broken, uses) = check_file(relative, source);
        violations.append(&mut broken);
        let (Some(from), Some(layer)) = (module_of(relative), layer_of(relative)) else {
            continue;
        };
        let node = graph.entry(from.clone()).or_default();
        for used in uses {
            let same_layer = used.split("::").next() == Some(layer);
            if same_layer && used.contains("::") && used != from {
                node.insert(used);
            }
        }
    }
    for circle in circles(&graph) {
        violations.push(format!("import circle inside a layer: {circle}"));
    }
    violations
}

#[test]
fn the_sources_follow_the_layering_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(
        files.len() > 100,
        "the sources were not found under {root:?}"
    );
    let violations = check_tree(&files);
    assert!(
        violations.is_empty(),
        "the layering rule of docs/ARCHITECTURE.md is broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_forbids() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let broken = check_tree(&[
        file(
            "core/seal.rs",
            "use crate::infra::storage::Storage;\nuse std::{fs, io};\nasync fn f() {}",
        ),
        file(
            "core/evidence.rs",
            "use crate::{core::seal, app::deposit::X};",
        ),
        file("domain/letter.rs", "fn f() { tokio::spawn(x); }"),
        file("app/a.rs", "use crate::app::b::B;"),
        file("app/b.rs", "use crate::app::c::C;"),
        file("app/c.rs", "use crate::app::a::A;"),
    ]);
    let expected = [
        "core/seal.rs: the core layer uses crate::infra::storage",
        "core/seal.rs: the core layer does no I/O but names std::fs",
        "core/seal.rs: the core layer is not async",
        "core/evidence.rs: the core layer uses crate::app::deposit",
        "domain/letter.rs: the domain layer does no I/O but names tokio",
        "import circle inside a layer: app::a → app::b → app::c → app::a",
    ];
    for e in expected {
        assert!(
            broken.iter().any(|v| v.starts_with(e)),
            "{e:?} not reported in {broken:#?}"
        );
    }
    assert_eq!(broken.len(), expected.len(), "{broken:#?}");

    // Comments, strings and a module named like a crate are not uses.
    let clean = check_tree(&[
        file(
            "core/seal.rs",
            "//! See [`crate::infra::storage`].\nconst S: &str = \"tokio::spawn\";\n\
             /* std::fs */ fn f(c: char) -> bool { c == '\"' }\nuse crate::core::asn1;",
        ),
        file("core/asn1.rs", "fn g() { let tokio_like = 1; }"),
    ]);
    assert!(clean.is_empty(), "{clean:#?}");
}
