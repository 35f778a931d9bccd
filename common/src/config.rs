//! Configuration loading for both binaries: TOML read into a typed value, with every problem
//! of a file reported at once, each as `FILE: key: reason`.
//!
//! [`parse`] reports a syntax error with its line, every unknown key by its dotted path, and a
//! value of the wrong type with its key; the caller adds the problems its own checks find
//! (ranges, dependencies between keys) and [`finish`] turns them into one [`ConfigError`].
//! Edges exit with code 64 on it (`crate::exit::CONFIG_INVALID`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

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

/// Parses `text`, read from `file`, into a `T`. Returns the value with the problems that did
/// not stop parsing (unknown keys), or the error that did (syntax, a wrong type) together with
/// the unknown keys seen before it.
pub fn parse<T: DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<(T, Vec<Problem>), ConfigError> {
    let error = |problems| ConfigError {
        file: file.to_path_buf(),
        problems,
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| error(vec![Problem::new("", toml_reason(text, &e))]))?;
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignored = serde_ignored::Deserializer::new(de, &mut on_unknown);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(ignored);
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|key| Problem::new(key, "unknown key"))
        .collect();
    match parsed {
        Ok(value) => Ok((value, problems)),
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            problems.push(Problem::new(key, toml_reason(text, &e.into_inner())));
            Err(error(problems))
        }
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

    #[test]
    fn a_type_error_names_its_key_and_line() {
        let e = parse::<Sample>(file(), "name = \"a\"\n[inner]\ncount = \"many\"\n").unwrap_err();
        let p = e.problems.last().unwrap();
        assert_eq!(p.key, "inner.count");
        assert!(p.reason.starts_with("line 3: "), "{p:?}");
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
