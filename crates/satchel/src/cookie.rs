//! Reading the session cookie from `Cookie` headers and writing `Set-Cookie` values.

use std::time::{Duration, SystemTime};

use crate::config::SessionConfig;

/// The values of every cookie named `name` in one `Cookie` header value, in order.
///
/// Works on bytes: other cookies in the same header may hold any bytes (browsers send
/// raw UTF-8 that scripts set), and they must not hide the session cookie. Values that
/// are not ASCII cannot be session cookies and are skipped.
pub(crate) fn values<'a>(header: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a str> {
    header.split(|&b| b == b';').filter_map(move |pair| {
        let at = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (&pair[..at], &pair[at + 1..]);
        if key.trim_ascii() != name.as_bytes() || !value.is_ascii() {
            return None;
        }
        let value = std::str::from_utf8(value).ok()?;
        Some(value.trim().trim_matches('"'))
    })
}

/// Writes `Set-Cookie` header values with the configured attributes, computed once.
#[derive(Debug, Clone)]
pub(crate) struct CookieWriter {
    name: String,
    /// `; Path=/; Domain=..; HttpOnly; Secure; SameSite=..`, shared by every cookie.
    attributes: String,
}

impl CookieWriter {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        let mut attributes = format!("; Path={}", config.cookie_path());
        if let Some(domain) = config.cookie_domain() {
            attributes.push_str("; Domain=");
            attributes.push_str(domain);
        }
        if config.http_only() {
            attributes.push_str("; HttpOnly");
        }
        if config.secure() {
            attributes.push_str("; Secure");
        }
        if let Some(same_site) = config.same_site() {
            attributes.push_str("; SameSite=");
            attributes.push_str(same_site.as_str());
        }
        Self {
            name: config.cookie_name().to_owned(),
            attributes,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A cookie carrying `value`; persistent until `expires` when given, otherwise a
    /// browser-session cookie.
    pub(crate) fn set(&self, value: &str, expires: Option<SystemTime>) -> String {
        let mut out = String::with_capacity(self.name.len() + value.len() + 120);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        if let Some(at) = expires {
            // Rounded up, so a cookie set for a whole number of seconds says so.
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let max_age = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            out.push_str("; Expires=");
            out.push_str(&httpdate::fmt_http_date(at));
            out.push_str("; Max-Age=");
            out.push_str(&max_age.to_string());
        }
        out.push_str(&self.attributes);
        out
    }

    /// A cookie that makes the browser delete the session cookie.
    pub(crate) fn removal(&self) -> String {
        format!(
            "{}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0{}",
            self.name, self.attributes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite;

    #[test]
    fn values_finds_every_cookie_with_the_name() {
        let header = b"a=1; session=xyz; sessionx=no; session = \"q\"";
        assert_eq!(values(header, "session").collect::<Vec<_>>(), ["xyz", "q"]);
        assert_eq!(values(b"broken; =; ;", "session").count(), 0);
        let utf8 = "pref=José; session=abc".as_bytes();
        assert_eq!(values(utf8, "session").collect::<Vec<_>>(), ["abc"]);
        let latin1 = b"pref=Jos\xe9; session=abc; session=\xff";
        assert_eq!(values(latin1, "session").collect::<Vec<_>>(), ["abc"]);
    }

    #[test]
    fn attributes_follow_the_configuration() {
        let config = SessionConfig::default()
            .with_cookie_name("sid")
            .with_cookie_domain("example.com")
            .with_cookie_path("/app")
            .with_secure(true)
            .with_same_site(Some(SameSite::Strict));
        let writer = CookieWriter::new(&config);
        let set = writer.set("v", None);
        assert_eq!(
            set,
            "sid=v; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Strict"
        );
        let expiring = writer.set("v", Some(SystemTime::now() + Duration::from_secs(100)));
        assert!(expiring.contains("; Expires=") && expiring.contains("; Max-Age="));
        assert!(
            writer
                .removal()
                .starts_with("sid=; Expires=Thu, 01 Jan 1970")
        );
    }

    #[test]
    fn defaults_give_http_only_root_path_and_no_secure() {
        let writer = CookieWriter::new(&SessionConfig::default());
        assert_eq!(writer.set("v", None), "session=v; Path=/; HttpOnly");
    }
}
