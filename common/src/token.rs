//! Bearer token files: the one rule for what a token file may be and hold, applied by the
//! agent's sender, its `config check`, the coordinator and `headroom groups` alike.
//!
//! A token the coordinator would refuse must be refused where it is configured, not found out
//! through a 401 answered for ever. The rule:
//! - a regular file (a symlink to one, as a mounted secret is, is followed) of at most
//!   [`MAX_TOKEN_FILE`] bytes;
//! - no access for others: group-readable is allowed (the service's group reads it), any
//!   "other" permission bit is refused;
//! - after trimming surrounding whitespace, at least [`MIN_TOKEN_LEN`] bytes of printable
//!   ASCII without spaces (it travels in an HTTP header; a guessable token protects nothing).
//!
//! The file is opened once and its mode read from the open descriptor, so what is checked is
//! what is read. A [`Token`] never prints its value.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Shortest accepted token, bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Largest accepted token file, bytes (a token is one line).
pub const MAX_TOKEN_FILE: u64 = 4096;

/// A bearer token read from a file that passed the rule.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token file is refused. Every message starts with the file's path and never holds
/// the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be opened or read.
    #[error("{path}: cannot read token file: {error}")]
    Read {
        /// The token file.
        path: String,
        /// What the OS said (in the message, not a source: said once).
        error: std::io::Error,
    },
    /// A directory, a device, a pipe.
    #[error("{path}: token file is not a regular file")]
    NotAFile {
        /// The token file.
        path: String,
    },
    /// Others (neither the owner nor the group) may read, write or run it.
    #[error("{path}: token file is accessible by others (mode {mode:o}); run chmod o-rwx")]
    OthersMayAccess {
        /// The token file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than [`MAX_TOKEN_FILE`].
    #[error("{path}: token file is larger than {MAX_TOKEN_FILE} bytes")]
    TooLarge {
        /// The token file.
        path: String,
    },
    /// Shorter than [`MIN_TOKEN_LEN`] after trimming.
    #[error("{path}: token must be at least {MIN_TOKEN_LEN} bytes (it has {len})")]
    TooShort {
        /// The token file.
        path: String,
        /// Bytes of the trimmed token.
        len: usize,
    },
    /// Not printable ASCII, or spaces inside.
    #[error("{path}: token must be printable ASCII without spaces")]
    NotPrintable {
        /// The token file.
        path: String,
    },
}

impl Token {
    /// Reads the token of the file at `path`, applying the rule of this module.
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let show = || path.display().to_string();
        let read_error = |error| TokenError::Read {
            path: show(),
            error,
        };
        // Non-blocking, so a named pipe is opened at once (and refused below as no file)
        // rather than waiting for a writer; reads of a regular file do not care.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(TokenError::NotAFile { path: show() });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Err(TokenError::OthersMayAccess { path: show(), mode });
        }
        let mut text = Vec::new();
        file.take(MAX_TOKEN_FILE + 1)
            .read_to_end(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_TOKEN_FILE {
            return Err(TokenError::TooLarge { path: show() });
        }
        let token = text.trim_ascii();
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err(TokenError::NotPrintable { path: show() });
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort {
                path: show(),
                len: token.len(),
            });
        }
        // Printable ASCII is UTF-8.
        let token = String::from_utf8_lossy(token).into_owned();
        Ok(Token(token))
    }

    /// The token, for an `Authorization: Bearer` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token's bytes, for a constant-time comparison.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn file(dir: &Path, text: &[u8], mode: u32) -> std::path::PathBuf {
        let p = dir.join("token");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn accepts_a_private_or_group_readable_long_token() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o640, 0o400] {
            let p = file(dir.path(), b"  0123456789abcdef0123\n", mode);
            assert_eq!(Token::read(&p).unwrap().as_str(), "0123456789abcdef0123");
        }
    }

    #[test]
    fn refuses_what_the_coordinator_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let long = b"0123456789abcdef0123\n";
        for mode in [0o644, 0o604, 0o602, 0o601] {
            let p = file(dir.path(), long, mode);
            assert!(
                matches!(Token::read(&p), Err(TokenError::OthersMayAccess { .. })),
                "mode {mode:o}"
            );
        }
        let p = file(dir.path(), b"secret\n", 0o600);
        let e = Token::read(&p).unwrap_err();
        assert!(matches!(e, TokenError::TooShort { len: 6, .. }), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        let p = file(dir.path(), b"0123456789 abcdef0123", 0o600);
        assert!(matches!(
            Token::read(&p),
            Err(TokenError::NotPrintable { .. })
        ));
        let p = file(dir.path(), &[b'a'; 5000], 0o600);
        assert!(matches!(Token::read(&p), Err(TokenError::TooLarge { .. })));
        assert!(matches!(
            Token::read(dir.path()),
            Err(TokenError::NotAFile { .. })
        ));
        assert!(matches!(
            Token::read(&dir.path().join("missing")),
            Err(TokenError::Read { .. })
        ));
    }

    /// A named pipe is refused at once: opening one for reading would otherwise wait for a
    /// writer, and hang a coordinator's start or reload.
    #[test]
    fn a_named_pipe_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("token");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Token::read(&fifo));
        });
        let read = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(
            matches!(read, Ok(Err(TokenError::NotAFile { .. }))),
            "{read:?}"
        );
    }

    #[test]
    fn a_token_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), b"0123456789abcdef0123", 0o600);
        let t = Token::read(&p).unwrap();
        assert_eq!(format!("{t:?}"), "Token(..)");
    }
}
