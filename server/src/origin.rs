//! The browser origins allowed to call the API (`ASKWELL_ALLOWED_ORIGINS`),
//! checked at start: CORS compares the `Origin` header byte for byte, so an
//! entry with a path, a trailing slash or no scheme would silently never
//! match, and `*` would make tower-http panic. Each is refused with a
//! message instead.

/// Checks one configured origin and returns it as browsers send it
/// (`https://app.example.com`, `http://localhost:5173`).
///
/// # Errors
/// A message saying what is wrong with it.
pub fn parse(text: &str) -> Result<String, String> {
    let origin = text.trim();
    if origin == "*" {
        return Err("`*` is not allowed: list each origin (https://app.example.com,https://www.example.com)".into());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!("{origin:?} needs a scheme: https://{origin}"));
    };
    if scheme != "https" && scheme != "http" {
        return Err(format!("{origin:?}: the scheme must be https or http"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!(
            "{origin:?}: an origin is scheme://host[:port] with no path, no trailing `/`"
        ));
    }
    if axum::http::HeaderValue::from_str(origin).is_err() {
        return Err(format!("{origin:?} is not a valid header value"));
    }
    Ok(origin.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_origins_as_browsers_send_them() {
        for origin in [
            "https://app.example.com",
            "http://localhost:5173",
            " https://[::1]:8443 ",
        ] {
            assert_eq!(parse(origin).as_deref(), Ok(origin.trim()));
        }
    }

    #[test]
    fn refuses_what_would_never_match_or_would_allow_everyone() {
        for (origin, why) in [
            ("*", "list each origin"),
            ("https://app.example.com/", "no path"),
            ("https://app.example.com/app", "no path"),
            ("app.example.com", "scheme"),
            ("ftp://app.example.com", "https or http"),
            ("https://", "no path"),
        ] {
            let error = parse(origin).expect_err(origin);
            assert!(error.contains(why), "{origin}: {error}");
        }
    }
}
