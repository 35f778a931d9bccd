//! The base URL of a peer (a coordinator replica, an etcd endpoint): `http://` or `https://`,
//! a host, an optional port, an optional path. Checked here once for every configuration and
//! flag that names one, so that a URL the HTTP client would refuse at the first request (a
//! space in the host, a port past 65535, no host at all) is refused when it is read instead,
//! with its key.

/// Why `url` is not a base URL a client can reach, if it is not; `port_required` for peers
/// with no port by convention (etcd).
pub fn problem(url: &str, port_required: bool) -> Option<String> {
    let what = if port_required {
        "an http:// or https:// URL with a host and a port"
    } else {
        "an http:// or https:// URL with a host"
    };
    let wrong = |why: &str| Some(format!("{url:?} is not {what}: {why}"));
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return wrong("the scheme");
    };
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return wrong(&format!("it holds {c:?}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return wrong("credentials go in the token file, not the URL");
    }
    // An IPv6 literal is bracketed; the port follows the last ':' outside the brackets.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, after)) => match after.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None => return wrong(&format!("{after:?} after the address")),
            },
            None => return wrong("an unclosed '['"),
        },
        None => match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return wrong("an IPv6 address goes in brackets, as [::1]:7878");
            }
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return wrong("no host");
    }
    if host.contains('%') {
        return wrong("an address with a zone is not supported");
    }
    // etcd's endpoints are a host and a port: a path would be dropped without a word.
    let path = &rest[authority.len()..];
    if port_required && !path.is_empty() && path != "/" {
        return wrong("a path");
    }
    match port {
        Some(p) if p.parse::<u16>().map_or(true, |n| n == 0) => {
            wrong(&format!("port {p:?} is not 1 to 65535"))
        }
        None if port_required => wrong("no port"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn base_urls_a_client_can_reach_pass() {
        for ok in [
            "http://127.0.0.1:7878",
            "https://coord.example:443/",
            "http://[::1]:7878",
            "https://coord.internal",
            "http://coord/prefix",
        ] {
            assert_eq!(problem(ok, false), None, "{ok}");
        }
        assert_eq!(problem("http://127.0.0.1:2379", true), None);
    }

    #[test]
    fn what_a_client_would_refuse_is_named() {
        for (bad, why) in [
            ("http://", "no host"),
            ("http://bad host:80", "' '"),
            ("https://h:99999", "99999"),
            ("https://h:0", "\"0\""),
            ("ftp://h", "scheme"),
            ("coord:7878", "scheme"),
            ("http://[::1:7878", "'['"),
            ("http://user:pw@h:1", "token file"),
            ("http://:80", "no host"),
            ("http://::1:7878", "brackets"),
            ("http://fe80::1", "brackets"),
            ("http://[::1]junk", "after the address"),
            ("http://[fe80::1%25eth0]:80", "zone"),
        ] {
            let p = problem(bad, false).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(p.contains(why), "{bad}: {p}");
        }
        assert!(problem("http://etcd", true).unwrap().contains("no port"));
        assert!(
            problem("http://etcd:2379/v3/x", true)
                .unwrap()
                .contains("a path")
        );
        assert_eq!(problem("http://[::1]:2379/", true), None);
    }
}
