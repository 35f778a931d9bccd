//! Ids of hosts, groups, store epochs and instances: the one rule for what may name them.
//!
//! Ids reach logs, metric labels, SQLite keys and the command actuator's arguments, so they
//! hold no spaces or control characters (no forged log lines) and do not start with `-` (no id
//! read as an option). The agent's configuration, the coordinator's and every signal are
//! checked with [`check_id`]; a group's name with [`check_group`] too.

/// Longest accepted host, group, epoch or instance id, bytes.
pub const MAX_ID_LEN: usize = 256;

/// Whether `id` may name a host, group, epoch or instance; the error says why not.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must be 1..={MAX_ID_LEN} bytes"));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    if id.starts_with('-') {
        return Err("must not start with '-'".into());
    }
    Ok(())
}

/// Whether `name` may name a group: an id ([`check_id`]) without `/`. A group's election keeps
/// its campaigns under `PREFIX NAME/`, so a group named `web/a` would campaign in group `web`'s
/// election; nor could `/v1/groups/{name}` address it.
pub fn check_group(name: &str) -> Result<(), String> {
    check_id(name)?;
    if name.contains('/') {
        return Err("must not contain '/'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_ids_without_a_slash() {
        assert!(check_group("web-1.prod").is_ok());
        assert!(check_group("web/a").is_err());
        assert!(check_group("web a").is_err());
    }

    #[test]
    fn ids_refuse_spaces_controls_options_and_lengths() {
        for (id, ok) in [
            ("web-1.example", true),
            ("i-0123456789abcdef0", true),
            ("--config=/tmp/x", false),
            ("web 1", false),
            ("web\nforged log line", false),
            ("", false),
        ] {
            assert_eq!(check_id(id).is_ok(), ok, "{id:?}");
        }
        assert!(check_id(&"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id(&"a".repeat(MAX_ID_LEN + 1)).is_err());
    }
}
