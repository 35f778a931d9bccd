//! Bearer tokens per group: read from files that others may not read, compared in constant
//! time, swapped atomically on SIGHUP.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::RwLock;

use subtle::ConstantTimeEq;

use super::config::CoordinatorConfig;

/// Shortest accepted token, bytes (a guessable token is no protection).
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token file is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("{path}: cannot read token file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Others (not owner, not group) may read or write it.
    #[error("{path}: token file is accessible by others (mode {mode:o}); run chmod o-rwx")]
    WorldAccessible { path: String, mode: u32 },
    /// Empty or too short after trimming whitespace.
    #[error("{path}: token must be at least {MIN_TOKEN_LEN} bytes")]
    TooShort { path: String },
}

/// Reads one token file: refuses modes that give others any access, trims whitespace.
pub fn read_token(path: &Path) -> Result<Vec<u8>, TokenError> {
    let show = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| TokenError::Read {
        path: show(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(TokenError::WorldAccessible { path: show(), mode });
    }
    let text = std::fs::read(path).map_err(|source| TokenError::Read {
        path: show(),
        source,
    })?;
    let token = text.trim_ascii().to_vec();
    if token.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort { path: show() });
    }
    Ok(token)
}

/// The accepted tokens of every group.
#[derive(Debug, Default)]
pub struct Tokens {
    by_group: RwLock<BTreeMap<String, Vec<Vec<u8>>>>,
}

impl Tokens {
    /// Reads every group's token files; any unreadable or unsafe file fails the whole load.
    pub fn load(config: &CoordinatorConfig) -> Result<BTreeMap<String, Vec<Vec<u8>>>, TokenError> {
        let (tokens, refused) = Tokens::reload(config);
        match refused.into_iter().next() {
            Some(first) => Err(first),
            None => Ok(tokens),
        }
    }

    /// Reads every group's token files for a reload, each on its own: a file that cannot be
    /// read or is unsafe gives no token (and is reported), so deleting a token's file revokes
    /// it, rather than failing the reload and keeping every old token, the revoked one too.
    pub fn reload(config: &CoordinatorConfig) -> (BTreeMap<String, Vec<Vec<u8>>>, Vec<TokenError>) {
        let mut out = BTreeMap::new();
        let mut refused = Vec::new();
        for (name, group) in &config.groups {
            let mut tokens = Vec::new();
            for path in &group.token_files {
                match read_token(path) {
                    Ok(t) => tokens.push(t),
                    Err(e) => refused.push(e),
                }
            }
            out.insert(name.clone(), tokens);
        }
        (out, refused)
    }

    /// Replaces every token at once.
    pub fn set(&self, tokens: BTreeMap<String, Vec<Vec<u8>>>) {
        if let Ok(mut guard) = self.by_group.write() {
            *guard = tokens;
        }
    }

    /// Whether `presented` is one of `group`'s tokens (constant time per candidate).
    pub fn allows(&self, group: &str, presented: &[u8]) -> bool {
        let Ok(guard) = self.by_group.read() else {
            return false;
        };
        guard.get(group).is_some_and(|tokens| {
            tokens.iter().fold(false, |ok, t| {
                ok | bool::from(t.as_slice().ct_eq(presented))
            })
        })
    }

    /// The groups this token opens.
    pub fn groups_for(&self, presented: &[u8]) -> Vec<String> {
        let Ok(guard) = self.by_group.read() else {
            return Vec::new();
        };
        guard
            .iter()
            .filter(|(_, tokens)| {
                tokens.iter().fold(false, |ok, t| {
                    ok | bool::from(t.as_slice().ct_eq(presented))
                })
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&axum::http::HeaderValue>) -> Option<&[u8]> {
    let value = header?.as_bytes();
    let rest = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))?;
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn refuses_world_readable_and_short_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, "0123456789abcdef0123\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_token(&p),
            Err(TokenError::WorldAccessible { .. })
        ));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_token(&p).unwrap(), b"0123456789abcdef0123");
        fs::write(&p, "short").unwrap();
        assert!(matches!(read_token(&p), Err(TokenError::TooShort { .. })));
    }

    #[test]
    fn compares_tokens_per_group() {
        let t = Tokens::default();
        t.set(BTreeMap::from([(
            "web".to_string(),
            vec![b"secret-token-0001".to_vec()],
        )]));
        assert!(t.allows("web", b"secret-token-0001"));
        assert!(!t.allows("web", b"secret-token-0002"));
        assert!(!t.allows("db", b"secret-token-0001"));
        assert_eq!(t.groups_for(b"secret-token-0001"), vec!["web".to_string()]);
        let h = axum::http::HeaderValue::from_static("Bearer abc");
        assert_eq!(bearer(Some(&h)), Some(&b"abc"[..]));
        assert_eq!(bearer(None), None);
    }
}
