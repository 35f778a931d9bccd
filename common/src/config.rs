//! Configuration loading for both binaries: TOML read into a typed value, with every problem
//! of a file reported at once, each as `FILE: key: reason`.
//!
//! [`parse`] reports a syntax error with its line, every unknown key by its dotted path, and
//! every value of the wrong type with its key and line (each is dropped and parsing goes on, so
//! one mistyped key does not hide the next); a file that parses, the caller then checks (ranges,
//! dependencies between keys) and [`finish`] turns all its problems into one [`ConfigError`].
//! Edges exit with code 64 on it (`crate::exit::CONFIG_INVALID`).
//!
//! The caller's checks run only on a file whose every value has its type: on one with a value
//! dropped, they would judge that value's default, and report problems the file does not have.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::de::{DeTable, DeValue};

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `agent.interval`; empty for problems of the whole file.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    /// A problem of `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file checked (or where the values came from, such as the command line).
    pub file: PathBuf,
    /// What is wrong, in file order where known.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "invalid configuration {} ({n} problem{s})",
            self.file.display()
        )?;
        for p in &self.problems {
            if p.key.is_empty() {
                write!(f, "\n  {}: {}", self.file.display(), p.reason)?;
            } else {
                write!(f, "\n  {}: {}: {}", self.file.display(), p.key, p.reason)?;
            }
        }
        Ok(())
    }
}

/// Reads the text of the configuration at `path`; `Ok(None)` when it does not exist and
/// `missing_ok` (a default path that may be absent).
pub fn read(path: &Path, missing_ok: bool) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => Ok(None),
        Err(e) => Err(ConfigError {
            file: path.to_path_buf(),
            problems: vec![Problem::new("", format!("cannot read: {e}"))],
        }),
    }
}

/// The most values of the wrong type reported from one file: past them, parsing stops (a
/// file that wrong is rewritten, not fixed key by key).
const MOST_WRONG_VALUES: usize = 64;

/// Parses `text`, read from `file`, into a `T`. Returns the value with the problems that did
/// not stop parsing (unknown keys), or, when the file does not parse, every problem found:
/// - a syntax error, with its line;
/// - every value of the wrong type, with its key and line, in file order: each is dropped and
///   parsing goes on, so one does not hide the next;
/// - every unknown key seen on the way.
///
/// A file with a value of the wrong type is refused with those problems only. The caller's own
/// checks do not run on it: with the value's default in its place they would report problems
/// the file does not have. Parsing stops at a wrong value that cannot be dropped alone (an
/// array's item), and at a table that misses a key only because one was dropped.
pub fn parse<T: DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<(T, Vec<Problem>), ConfigError> {
    let error = |problems| ConfigError {
        file: file.to_path_buf(),
        problems,
    };
    let mut root =
        DeTable::parse(text).map_err(|e| error(vec![Problem::new("", toml_reason(text, &e))]))?;
    let mut unknown: Vec<String> = Vec::new();
    // (where in the text, the problem), to report in file order.
    let mut wrong: Vec<(usize, Problem)> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let refused = |unknown: Vec<String>, mut wrong: Vec<(usize, Problem)>| {
        wrong.sort_by_key(|(at, _)| *at);
        let mut problems = unknown_keys(unknown);
        problems.extend(wrong.into_iter().map(|(_, p)| p));
        error(problems)
    };
    // Each pass drops one key, so the passes are bounded by the keys there are, and by
    // MOST_WRONG_VALUES (each pass parses the whole file again).
    loop {
        let mut seen = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| seen.push(path.to_string());
        let de = toml::de::Deserializer::from(root.clone());
        let parsed: Result<T, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut on_unknown));
        for key in seen {
            if !unknown.contains(&key) {
                unknown.push(key);
            }
        }
        let e = match parsed {
            Ok(value) if wrong.is_empty() => return Ok((value, unknown_keys(unknown))),
            Ok(_) => return Err(refused(unknown, wrong)),
            Err(e) => e,
        };
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        // A table missing a key that was there, but of the wrong type: not the file's problem.
        if dropped.iter().any(|d| parent(d) == key) {
            return Err(refused(unknown, wrong));
        }
        let can_drop = drop_value(root.get_mut(), e.path());
        let inner = e.into_inner();
        let at = inner.span().map_or(usize::MAX, |s| s.start);
        wrong.push((at, Problem::new(key.clone(), toml_reason(text, &inner))));
        if !can_drop || wrong.len() >= MOST_WRONG_VALUES {
            return Err(refused(unknown, wrong));
        }
        dropped.push(key);
    }
}

/// A problem for each unknown key.
fn unknown_keys(keys: Vec<String>) -> Vec<Problem> {
    keys.into_iter()
        .map(|key| Problem::new(key, "unknown key"))
        .collect()
}

/// The dotted key of the table that holds `key` (empty at the top).
fn parent(key: &str) -> &str {
    key.rfind(['.', '[']).map_or("", |i| &key[..i])
}

/// Removes the value at `path` from `table` when it is a table's key (not an array's item:
/// the items after it would move and be named by the wrong index); whether it did.
fn drop_value(table: &mut DeTable<'_>, path: &serde_path_to_error::Path) -> bool {
    let segments: Vec<&Segment> = path.iter().collect();
    drop_in_table(table, &segments)
}

fn drop_in_table(table: &mut DeTable<'_>, path: &[&Segment]) -> bool {
    match path {
        [Segment::Map { key }] => table.remove(key.as_str()).is_some(),
        [Segment::Map { key }, rest @ ..] => table
            .get_mut(key.as_str())
            .is_some_and(|v| drop_in_value(v.get_mut(), rest)),
        _ => false,
    }
}

fn drop_in_value(value: &mut DeValue<'_>, path: &[&Segment]) -> bool {
    match (value, path) {
        (DeValue::Table(t), _) => drop_in_table(t, path),
        (DeValue::Array(a), [Segment::Seq { index }, rest @ ..]) if !rest.is_empty() => a
            .get_mut(*index)
            .is_some_and(|v| drop_in_value(v.get_mut(), rest)),
        _ => false,
    }
}

/// `value` when `problems` is empty, else every problem as one error of `file`.
pub fn finish<T>(file: &Path, value: T, problems: Vec<Problem>) -> Result<T, ConfigError> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// A deserializer's message with the Rust type names it expected said in the file's words.
pub fn in_plain_words(message: &str) -> String {
    let Some((head, expected)) = message.split_once("expected ") else {
        return message.to_string();
    };
    let plain = match expected {
        "f64" | "f32" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "a boolean" => "true or false",
        e if e.starts_with("struct ") || e.starts_with("a map") => "a table",
        e if e.starts_with("a sequence") => "an array",
        _ => return message.to_string(),
    };
    format!("{head}expected {plain}")
}

/// A TOML error as `line N: message (`what it is about`)`, without the multi-line source
/// excerpt: the text the error points at is named when it is short and on one line, so
/// "duplicate key" says which.
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let message = in_plain_words(&e.message().split_whitespace().collect::<Vec<_>>().join(" "));
    match e.span() {
        Some(span) => {
            let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
            let about = text.get(span).map(str::trim).filter(|s| {
                !s.is_empty()
                    && s.chars().count() <= 60
                    && !s.contains('\n')
                    && !s.starts_with('[')
                    && !message.contains(s)
            });
            match about {
                Some(about) => format!("line {line}: {message} (`{about}`)"),
                None => format!("line {line}: {message}"),
            }
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default)]
    struct Sample {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default)]
    struct Inner {
        count: u32,
    }

    fn file() -> &'static Path {
        Path::new("/etc/x.toml")
    }

    #[test]
    fn unknown_keys_are_all_named_with_the_value() {
        let (v, problems) =
            parse::<Sample>(file(), "name = \"a\"\ncolour = 1\n[inner]\nsize = 2\n").unwrap();
        assert_eq!(v.name, "a");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["colour", "inner.size"]);
        let e = finish(file(), v, problems).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid configuration /etc/x.toml (2 problems)"),
            "{e}"
        );
        assert!(e.contains("\n  /etc/x.toml: colour: unknown key"), "{e}");
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default)]
    struct Listed {
        name: String,
        items: Vec<Inner>,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct WithTls {
        name: String,
        tls: Option<Tls>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Tls {
        #[allow(dead_code)]
        cert: String,
    }

    fn named(e: &ConfigError) -> Vec<(&str, &str)> {
        e.problems
            .iter()
            .map(|p| (p.key.as_str(), p.reason.get(..7).unwrap_or(&p.reason)))
            .collect()
    }

    #[test]
    fn every_type_error_is_named_by_key_and_line_in_file_order() {
        let text = "name = 1\ncolour = 2\n[inner]\ncount = \"many\"\n";
        let e = parse::<Sample>(file(), text).unwrap_err();
        assert_eq!(
            named(&e),
            [
                ("colour", "unknown"),
                ("name", "line 1:"),
                ("inner.count", "line 4:")
            ]
        );
        // Items of an array of tables: each one's key is dropped like any other.
        let text = "[[items]]\ncount = \"x\"\n[[items]]\ncount = \"y\"\n";
        let e = parse::<Listed>(file(), text).unwrap_err();
        assert_eq!(
            named(&e),
            [("items[0].count", "line 2:"), ("items[1].count", "line 4:")]
        );
    }

    #[test]
    fn parsing_stops_where_a_drop_would_mislead() {
        // An array's item wrong as a whole: dropping it would shift the next one's index.
        let text = "items = [{ count = 1 }, 2, 3]\nname = 1\n";
        let e = parse::<Listed>(file(), text).unwrap_err();
        assert_eq!(named(&e), [("items[1]", "line 1:")]);
        // A table that needs the key dropped: "missing field" would be untrue. The unknown keys
        // seen on the way are kept.
        let text = "name = 2\n[tls]\ncert = 5\ncolour = 1\n";
        let e = parse::<WithTls>(file(), text).unwrap_err();
        assert_eq!(
            named(&e),
            [
                ("tls.?.colour", "unknown"),
                ("name", "line 1:"),
                ("tls.cert", "line 3:")
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_one_problem_of_the_file() {
        let e = parse::<Sample>(file(), "[inner\n").unwrap_err();
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].key, "");
        assert!(!e.problems[0].reason.contains('\n'));
    }

    #[test]
    fn a_missing_default_file_is_none_and_another_missing_file_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert_eq!(read(&missing, true), Ok(None));
        let e = read(&missing, false).unwrap_err();
        assert!(e.problems[0].reason.starts_with("cannot read"), "{e}");
    }
    #[test]
    fn syntax_and_type_errors_name_what_they_are_about_in_the_file_s_words() {
        let reasons = |text: &str| -> Vec<String> {
            match parse::<Sample>(file(), text) {
                Err(e) => e.problems.into_iter().map(|p| p.reason).collect(),
                Ok((_, problems)) => problems.into_iter().map(|p| p.reason).collect(),
            }
        };
        let dup = reasons("name = \"a\"\nname = \"b\"\n");
        assert_eq!(dup, ["line 2: duplicate key (`name`)"], "{dup:?}");
        let typed = reasons("[inner]\ncount = -1\n");
        assert!(
            typed[0].ends_with("expected a whole number, 0 or more"),
            "{typed:?}"
        );
        let table = reasons("inner = 5\n");
        assert!(table[0].ends_with("expected a table"), "{table:?}");
        assert!(!table[0].contains("struct"), "{table:?}");
    }
}
