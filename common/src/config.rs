//! Configuration loading for both binaries: TOML read into a typed value, with every problem
//! of a file reported at once, each as `FILE: key: reason`.
//!
//! [`parse`] reports a syntax error with its line, every unknown key by its dotted path, and
//! every value of the wrong type with its key and line (each is dropped for its default and
//! parsing goes on, so one mistyped key does not hide the next, nor the range checks of the
//! rest); the caller adds the problems its own checks find (ranges, dependencies between keys)
//! and [`finish`] turns them into one [`ConfigError`]. Edges exit with code 64 on it
//! (`crate::exit::CONFIG_INVALID`).
//!
//! Invariant: a value [`parse`] returns with any problem is never used: [`finish`] refuses it.

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

/// Parses `text`, read from `file`, into a `T`, with every problem parsing finds: unknown keys,
/// and every value of the wrong type. A value of the wrong type is dropped and parsing goes on
/// without it, so the next one is found too and the `T` returned holds the default in its
/// place: the caller's own checks still run on the rest, and [`finish`] refuses the value
/// whenever a problem was found. Only a syntax error, or a wrong value that cannot be dropped
/// alone (an array's item, a table missing a key it needs), stops parsing: then the error is
/// returned with the problems found before it.
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
    let mut wrong = Vec::new();
    // Each pass drops one key, so the passes are bounded by the keys there are, and by
    // MOST_WRONG_VALUES (each pass parses the whole file again).
    loop {
        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = toml::de::Deserializer::from(root.clone());
        let parsed: Result<T, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut on_unknown));
        let mut problems: Vec<Problem> = unknown
            .into_iter()
            .map(|key| Problem::new(key, "unknown key"))
            .collect();
        match parsed {
            Ok(value) => {
                problems.append(&mut wrong);
                return Ok((value, problems));
            }
            Err(e) => {
                let key = e.path().to_string();
                let dropped = drop_value(root.get_mut(), e.path());
                let key = if key == "." { String::new() } else { key };
                wrong.push(Problem::new(key, toml_reason(text, &e.into_inner())));
                if !dropped || wrong.len() >= MOST_WRONG_VALUES {
                    problems.append(&mut wrong);
                    return Err(error(problems));
                }
            }
        }
    }
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

/// A TOML error as `line N: message`, without the multi-line source excerpt.
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
            format!("line {line}: {message}")
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

    #[test]
    fn every_type_error_is_named_by_key_and_line_and_the_rest_still_parses() {
        let text = "name = 1\ncolour = 2\n[inner]\ncount = \"many\"\n";
        let (v, problems) = parse::<Sample>(file(), text).unwrap();
        // The wrong values give way to their defaults, so the caller's checks run on the rest.
        assert_eq!(v, Sample::default());
        let named: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.key.as_str(), &p.reason[..7]))
            .collect();
        assert_eq!(
            named,
            [
                ("colour", "unknown"),
                ("inner.count", "line 4:"),
                ("name", "line 1:")
            ]
        );
        let e = finish(file(), v, problems).unwrap_err().to_string();
        assert!(e.contains("(3 problems)"), "{e}");
    }

    #[test]
    fn a_wrong_item_of_an_array_stops_parsing_with_what_was_found() {
        // Dropping the item would shift the next one's index: parsing stops there.
        let text = "items = [{ count = 1 }, 2, 3]\nname = 1\n";
        let e = parse::<Listed>(file(), text).unwrap_err();
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["items[1]"], "{e}");
        // An item's key that is a table's key is dropped like any other.
        let text = "[[items]]\ncount = \"x\"\n[[items]]\ncount = \"y\"\n";
        let (v, problems) = parse::<Listed>(file(), text).unwrap();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["items[0].count", "items[1].count"]);
        assert_eq!(v.items.len(), 2);
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
}
