//! The fleet install files pass their checkers.

use super::*;

#[test]
fn fleet_install_files_pass_their_checkers() {
    if !require(
        &["ansible-lint", "shellcheck", "cloud-init"],
        false,
        "fleet files",
    ) {
        return;
    }
    let script = packaging().join("cloud-init/headroom-bootstrap.sh");
    let user_data = packaging().join("cloud-init/user-data.yaml");
    run(Command::new("shellcheck").arg(&script));
    let schema = run(Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&user_data));
    assert!(
        text(&schema).contains("Valid cloud-config"),
        "{}",
        text(&schema)
    );
    // The script as user-data.yaml inlines it: its block under the script's path, dedented.
    let yaml = std::fs::read_to_string(&user_data).unwrap();
    let block = yaml
        .split_once("path: /usr/local/sbin/headroom-bootstrap")
        .and_then(|(_, rest)| rest.split_once("content: |\n"))
        .map(|(_, rest)| rest)
        .expect("the script's block");
    let inlined: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| format!("{}\n", l.strip_prefix("      ").unwrap_or(l)))
        .collect();
    assert_eq!(
        inlined.trim_end(),
        std::fs::read_to_string(&script).unwrap().trim_end(),
        "user-data.yaml inlines packaging/cloud-init/headroom-bootstrap.sh unchanged"
    );
    let lint = Command::new("ansible-lint")
        .current_dir(packaging().join("ansible"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "ansible-lint: {}{}",
        text(&lint),
        String::from_utf8_lossy(&lint.stderr)
    );
}
