//! The unit-size rule of `docs/ARCHITECTURE.md`: no function of the core or the app layer is
//! longer than [`LIMIT`] lines unless a `// Long on purpose:` comment right above it says
//! why. Test code (a `tests.rs` file, or what follows `#[cfg(test)]` in a file) is not
//! counted.
//!
//! A function is counted from its `fn` line to the closing brace at the same indentation,
//! the way `rustfmt` lays it out.

use std::path::Path;

/// Most lines a function may take without a stated reason.
const LIMIT: usize = 100;

/// The layers whose functions are held to [`LIMIT`].
const HELD: &[&str] = &["core", "app"];

/// The comment that excuses a long function, within the three lines above its `fn`.
const EXCUSE: &str = "// Long on purpose:";

/// The functions of one file over the limit without an excuse, as `path:line name (n lines)`.
fn long_functions(path: &Path, source: &str) -> Vec<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let lines: Vec<&str> = source
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]" || l.starts_with(' '))
        .collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, name)) = fn_start(line) else {
            continue;
        };
        let closing = format!("{indent}}}");
        let Some(end) = (i + 1..lines.len()).find(|&j| lines[j] == closing) else {
            continue;
        };
        let length = end - i + 1;
        let excused = lines[i.saturating_sub(3)..i]
            .iter()
            .any(|l| l.trim_start().starts_with(EXCUSE));
        if length > LIMIT && !excused {
            found.push(format!(
                "{}:{} {name} ({length} lines)",
                path.display(),
                i + 1
            ));
        }
    }
    found
}

/// The indentation and name of a function whose body starts on this line, if it does.
fn fn_start(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    if line.trim_end().ends_with(';') {
        return None;
    }
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some((indent, &rest[..name_len]))
}

#[test]
fn core_and_app_functions_are_short_or_say_why() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in HELD {
        crate::layering::sources(&root, &root.join(layer), &mut files);
    }
    files.sort();
    assert!(
        files.len() > 30,
        "the sources were not found under {root:?}"
    );
    let found: Vec<String> = files
        .iter()
        .flat_map(|(relative, source)| long_functions(relative, source))
        .collect();
    assert!(
        found.is_empty(),
        "functions over {LIMIT} lines without a `{EXCUSE}` comment:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_counts_what_it_should() {
    let body = |name: &str, lines: usize| {
        let mut text = format!("    pub async fn {name}(x: u8) -> u8 {{\n");
        for _ in 0..lines {
            text.push_str("        let _ = x;\n");
        }
        text.push_str("    }\n");
        text
    };
    let long = format!("impl A {{\n{}}}\n", body("long", 120));
    assert_eq!(
        long_functions(Path::new("core/a.rs"), &long),
        vec!["core/a.rs:2 long (122 lines)".to_string()]
    );
    let short = format!("impl A {{\n{}}}\n", body("short", 90));
    assert!(long_functions(Path::new("core/a.rs"), &short).is_empty());
    let excused = format!(
        "impl A {{\n    // Long on purpose: one table.\n{}}}\n",
        body("table", 120)
    );
    assert!(long_functions(Path::new("core/a.rs"), &excused).is_empty());
    let in_tests = format!(
        "fn a() {{}}\n\n#[cfg(test)]\nmod tests {{\n{}}}\n",
        body("t", 120)
    );
    assert!(long_functions(Path::new("core/a.rs"), &in_tests).is_empty());
    assert!(long_functions(Path::new("core/tests.rs"), &long).is_empty());
    let declaration = "    fn declared(&self) -> u8;\n";
    assert!(long_functions(Path::new("core/a.rs"), declaration).is_empty());
}
