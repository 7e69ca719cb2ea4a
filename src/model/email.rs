//! Mail addresses as the appliance and the cloud accept them: one pure check for both.

/// An address trimmed and lower-cased, or `None` unless it is a plain `local@domain` address
/// (no quoting, no comments, no IP literals).
pub fn normalize(input: &str) -> Option<String> {
    let e = input.trim().to_ascii_lowercase();
    if e.len() > 254 {
        return None;
    }
    let (local, domain) = e.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (local_ok && domain_ok).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn plain_addresses_only() {
        assert_eq!(
            normalize(" Ann@Example.COM ").as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "",
            "nobody",
            "@example.com",
            "a@",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@[127.0.0.1]",
            "\"a b\"@example.com",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
