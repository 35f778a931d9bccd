//! The agent binary's code layout.

use super::*;

/// Defined code symbols of `bin`: (address, size, name), by address.
fn code_symbols(bin: &str) -> Vec<(u64, u64, String)> {
    let out = run(Command::new("nm").args(["--defined-only", "-S", "-n", bin]));
    text(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [a, s, t, n] if "tTwW".contains(t) => Some((
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(s, 16).ok()?,
                    n.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

/// A symbol's name as agent/link/hot-functions.txt lists it: without Rust's legacy hash
/// (`17h` and 16 hex digits, then `E`) or the numbered suffix of a local copy (`.123`,
/// `.llvm.123`), as agent/link/order-link.sh matches them.
fn symbol_key(name: &str) -> String {
    let mut k = name.to_string();
    let hash = k.match_indices("17h").map(|(i, _)| i).find(|&i| {
        k.len() >= i + 20
            && k.as_bytes()[i + 19] == b'E'
            && k[i + 3..i + 19].bytes().all(|b| b.is_ascii_hexdigit())
    });
    if let Some(i) = hash {
        k.replace_range(i..i + 20, "");
    }
    if let Some(dot) = k.rfind('.')
        && dot + 1 < k.len()
        && k[dot + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        k.truncate(dot);
        if k.ends_with(".llvm") {
            k.truncate(k.len() - ".llvm".len());
        }
    }
    k
}

#[test]
fn symbol_keys_drop_hashes_and_local_suffixes() {
    assert_eq!(
        symbol_key("_ZN14headroom_model8forecast10Forecaster7observe17he23b0503ce66a6c5E"),
        "_ZN14headroom_model8forecast10Forecaster7observe"
    );
    assert_eq!(
        symbol_key("_RNvXs_NtCs1_3std2io5Write9write_str.8"),
        "_RNvXs_NtCs1_3std2io5Write9write_str"
    );
    assert_eq!(symbol_key("foo17habcE.llvm.123"), "foo17habcE");
    assert_eq!(symbol_key("btreeNext.constprop.0"), "btreeNext.constprop");
    assert_eq!(symbol_key("sqlite3VdbeExec"), "sqlite3VdbeExec");
}

#[test]
fn agent_binary_lays_out_the_functions_it_runs_together() {
    if !require(
        &["nm"],
        false,
        "agent_binary_lays_out_the_functions_it_runs_together",
    ) {
        return;
    }
    let list = std::fs::read_to_string(repo().join("agent/link/hot-functions.txt"))
        .expect("agent/link/hot-functions.txt");
    let hot: std::collections::HashSet<&str> = list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let symbols = code_symbols(bin());
    let listed: Vec<&(u64, u64, String)> = symbols
        .iter()
        .filter(|(_, size, name)| *size > 0 && hot.contains(symbol_key(name).as_str()))
        .collect();
    assert!(
        listed.len() >= hot.len() / 4,
        "only {} of the {} listed functions found in {}: is agent/link/hot-functions.txt current?",
        listed.len(),
        hot.len(),
        bin()
    );
    let size: u64 = listed.iter().map(|s| s.1).sum();
    let first = listed.iter().map(|s| s.0).min().expect("some listed");
    let last = listed.iter().map(|s| s.0 + s.1).max().expect("some listed");
    let text_start = symbols.first().map(|s| s.0).expect("code symbols");
    // Laid out together at the start of the code: the span they cover is little more than
    // their own size (alignment padding), where an unordered link scatters them over the text.
    assert!(
        last - first <= size + size / 4,
        "{} listed functions ({size} bytes) span {} bytes",
        listed.len(),
        last - first
    );
    assert!(
        first - text_start <= 4096,
        "listed functions start {} bytes into the code",
        first - text_start
    );
}
