//! Which store URLs name an EventStoreDB, and how they are shown: credentials never appear in
//! our messages, so the password of a URL is masked wherever it is quoted.

/// The URL schemes that name an EventStoreDB (KurrentDB) server or cluster.
const SCHEMES: [&str; 4] = ["esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover"];

/// Whether the URL's scheme names an EventStoreDB (any case).
pub(crate) fn is_esdb_url(url: &str) -> bool {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    scheme.is_some_and(|s| SCHEMES.iter().any(|e| s.eq_ignore_ascii_case(e)))
}

/// The URL with the password of its user info masked.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, hosts)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_the_password_only() {
        assert_eq!(
            redact("esdb://admin:changeit@db1:2113,db2:2113?tls=true"),
            "esdb://admin:***@db1:2113,db2:2113?tls=true"
        );
        assert_eq!(
            redact("kurrentdb+discover://ops:p%40ss@cluster.local/?tls=false"),
            "kurrentdb+discover://ops:***@cluster.local/?tls=false"
        );
        assert_eq!(
            redact("esdb://localhost:2113?tls=false"),
            "esdb://localhost:2113?tls=false"
        );
    }

    #[test]
    fn only_eventstoredb_schemes_name_eventstoredb() {
        assert!(is_esdb_url("esdb://localhost:2113"));
        assert!(is_esdb_url("KurrentDB+Discover://cluster.example"));
        assert!(!is_esdb_url("sqlite://data/ledger.db"));
        assert!(!is_esdb_url("esdb:localhost"));
    }
}
