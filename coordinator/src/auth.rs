//! Bearer tokens per group: read from token files by the one rule both binaries share
//! ([`headroom_common::token`]), compared in constant time, swapped atomically on SIGHUP.

use std::collections::BTreeMap;
use std::sync::RwLock;

use headroom_common::cli::CoordinatorArgs;
use headroom_common::config::{self as loader, ConfigError, Problem};
use headroom_common::token::Token;
use subtle::ConstantTimeEq;

use crate::config::CoordinatorConfig;

/// Every group's accepted tokens, by group name.
pub type GroupTokens = BTreeMap<String, Vec<Token>>;

/// The accepted tokens of every group.
#[derive(Debug, Default)]
pub struct Tokens {
    by_group: RwLock<GroupTokens>,
}

impl Tokens {
    /// Reads the configuration ([`CoordinatorConfig::read`]) and every group's token files:
    /// any problem of either fails the whole load, and all are reported at once, a missing
    /// token file beside a bad key, keyed as the configuration names them, from its origin
    /// (the configuration file, or the command line).
    pub fn load(args: &CoordinatorArgs) -> Result<(CoordinatorConfig, GroupTokens), ConfigError> {
        let (config, mut problems) = CoordinatorConfig::read(args)?;
        let (tokens, refused) = Tokens::reload(&config);
        problems.extend(refused);
        CoordinatorConfig::name_flags(args, &mut problems);
        loader::finish(&CoordinatorConfig::origin(args), (config, tokens), problems)
    }

    /// Reads every group's token files for a reload, each on its own: a file that cannot be
    /// read or is unsafe gives no token (and is reported, as `groups.NAME.token_files[i]`), so
    /// deleting a token's file revokes it, rather than failing the reload and keeping every old
    /// token, the revoked one too.
    pub fn reload(config: &CoordinatorConfig) -> (GroupTokens, Vec<Problem>) {
        let mut out = BTreeMap::new();
        let mut refused = Vec::new();
        for (name, group) in &config.groups {
            let mut tokens = Vec::new();
            for (i, path) in group.token_files.iter().enumerate() {
                match Token::read(path) {
                    Ok(t) => tokens.push(t),
                    Err(e) => refused.push(Problem::new(
                        format!("groups.{name}.token_files[{i}]"),
                        e.to_string(),
                    )),
                }
            }
            out.insert(name.clone(), tokens);
        }
        (out, refused)
    }

    /// Replaces every token at once.
    pub fn set(&self, tokens: GroupTokens) {
        if let Ok(mut guard) = self.by_group.write() {
            *guard = tokens;
        }
    }

    /// Whether `presented` is one of `group`'s tokens (constant time per candidate).
    pub fn allows(&self, group: &str, presented: &[u8]) -> bool {
        let Ok(guard) = self.by_group.read() else {
            return false;
        };
        guard
            .get(group)
            .is_some_and(|tokens| holds(tokens, presented))
    }

    /// The groups this token opens.
    pub fn groups_for(&self, presented: &[u8]) -> Vec<String> {
        let Ok(guard) = self.by_group.read() else {
            return Vec::new();
        };
        guard
            .iter()
            .filter(|(_, tokens)| holds(tokens, presented))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Whether `presented` is one of `tokens`, comparing with every one in constant time (no early
/// exit tells a caller how close it came).
fn holds(tokens: &[Token], presented: &[u8]) -> bool {
    tokens.iter().fold(false, |ok, t| {
        ok | bool::from(t.as_bytes().ct_eq(presented))
    })
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn compares_tokens_per_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web");
        fs::write(&path, "secret-token-0001\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let t = Tokens::default();
        t.set(BTreeMap::from([(
            "web".to_string(),
            vec![Token::read(&path).unwrap()],
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
