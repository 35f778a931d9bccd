//! The policy's memory (`headroom_model::PolicyMemory`) as both binaries store it: JSON text,
//! one stored value per agent metric or coordinator group. Reading it back is one rule for
//! both: a stored memory this headroom cannot read is logged and left, and the policy starts
//! afresh (it is learned state, never worth refusing to start over).

use headroom_model::PolicyMemory;

/// The text stored for `memory`.
pub fn stored(memory: &PolicyMemory) -> serde_json::Result<String> {
    serde_json::to_string(memory)
}

/// The memory `text` holds, or `None` (logged) when this headroom cannot read it; `of` names
/// whose memory it is in the log (a group, a metric).
pub fn read(text: &str, of: &str) -> Option<PolicyMemory> {
    serde_json::from_str(text)
        .inspect_err(|err| {
            tracing::warn!(
                of,
                "the stored policy memory is unreadable, not restored: {err}"
            )
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use headroom_model::{Policy, PolicyConfig};

    #[test]
    fn a_stored_memory_reads_back_and_other_text_reads_as_none() {
        let memory = Policy::new(PolicyConfig::default()).memory(10.0);
        let text = stored(&memory).expect("serialises");
        assert_eq!(read(&text, "g"), Some(memory));
        assert_eq!(read("not json", "g"), None);
        assert_eq!(read("{\"layout\": 1}", "g"), None);
    }
}
