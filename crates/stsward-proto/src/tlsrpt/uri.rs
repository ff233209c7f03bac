//! RFC 8460 §3 — the `rua` reporting URIs
//!
//! Each `tlsrpt-uri` is an RFC 3986 URI in which, RFC 8460 §3: "commas (ASCII 0x2C),
//! exclamation points (ASCII 0x21), and semicolons (ASCII 0x3B) MUST be encoded" (they would
//! otherwise split the list, look like a DMARC size limit, or end the field). RFC 8460 §3:
//! "Two URI schemes are supported: "mailto" and "https"" — reports by e-mail (RFC 6068,
//! RFC 8460 §5.3) and by HTTP POST (§5.4); plain `http:` is not one of them.
//!
//! ```text
//! mailto-uri = "mailto:" addr-spec *("%2C" addr-spec) [ "?" hfields ]   ; RFC 6068 §2
//! https-uri  = "https://" [ userinfo "@" ] host [ ":" port ] path-abempty
//!              [ "?" query ] [ "#" fragment ]                           ; RFC 3986 §3
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 characters as text.
pub const MAX_NAME_LEN: usize = 253;

/// A validated reporting URI from a `rua` field (RFC 8460 §3). `Display` gives back the URI
/// exactly as published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuaUri {
    /// Reports by e-mail (RFC 8460 §5.3).
    Mailto(MailtoUri),
    /// Reports by HTTPS POST (RFC 8460 §5.4).
    Https(HttpsUri),
}

/// A validated `mailto:` URI (RFC 6068), as published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailtoUri {
    uri: String,
}

/// A validated `https:` URI with a host (RFC 3986), as published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpsUri {
    uri: String,
    host: String,
}

/// Why a `rua` URI is invalid (RFC 8460 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuaError {
    /// No `scheme:` prefix.
    #[error("it has no scheme; write mailto:<address> or https://<host>/<path>")]
    MissingScheme,
    /// `http:` instead of `https:`.
    #[error("plain http: is not allowed; reports are posted over https: only (RFC 8460 §3)")]
    PlainHttp,
    /// A scheme other than `mailto` or `https`.
    #[error("the scheme {scheme:?} is not supported; use mailto: or https:")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// A character that must be percent-encoded.
    #[error(
        "the character {ch:?} must be percent-encoded (RFC 3986; RFC 8460 §3 for ',' and '!'); an internationalised domain must use its xn-- form"
    )]
    Character {
        /// The character found.
        ch: char,
    },
    /// A `%` not followed by two hex digits.
    #[error("a '%' is not followed by two hexadecimal digits")]
    PercentEncoding,
    /// The `mailto:` address is not `local@domain`.
    #[error("the e-mail address is not valid: {reason}")]
    Address {
        /// What is wrong.
        reason: &'static str,
    },
    /// The `https:` host is missing or not a valid name or address.
    #[error("the https host is not valid: {reason}")]
    Host {
        /// What is wrong.
        reason: &'static str,
    },
    /// The port is not a number from 0 to 65535.
    #[error("the port is not a number from 0 to 65535")]
    Port,
}

impl RuaUri {
    /// The URI as published.
    pub fn as_str(&self) -> &str {
        match self {
            RuaUri::Mailto(m) => &m.uri,
            RuaUri::Https(h) => &h.uri,
        }
    }
}

impl MailtoUri {
    /// The whole URI.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The address part (between `mailto:` and `?`), still percent-encoded.
    pub fn address(&self) -> &str {
        let rest = self.uri.get(MAILTO.len()..).unwrap_or_default();
        rest.split_once('?').map_or(rest, |(to, _)| to)
    }

    /// The header fields after `?`, if any (RFC 6068 `hfields`).
    pub fn headers(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, h)| h)
    }
}

impl HttpsUri {
    /// The whole URI.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The host (a name, an IPv4 address, or a bracketed IPv6 address).
    pub fn host(&self) -> &str {
        &self.host
    }
}

const MAILTO: &str = "mailto:";

/// Characters that RFC 3986 allows unencoded anywhere in a URI, minus the ones RFC 8460 §3
/// requires encoded (`,` `!` `;`).
fn check_chars(s: &str) -> Result<(), RuaError> {
    let b = s.as_bytes();
    for (i, ch) in s.char_indices() {
        let ok = ch.is_ascii_alphanumeric()
            || matches!(
                ch,
                '-' | '.'
                    | '_'
                    | '~'
                    | ':'
                    | '/'
                    | '?'
                    | '#'
                    | '['
                    | ']'
                    | '@'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | '='
                    | '%'
            );
        if !ok {
            return Err(RuaError::Character { ch });
        }
        if ch == '%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(RuaError::PercentEncoding);
            }
        }
    }
    Ok(())
}

/// A fully qualified host name: LDH labels, at least two of them.
fn valid_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() <= MAX_NAME_LEN
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

fn parse_mailto(uri: &str) -> Result<(), RuaError> {
    let rest = uri.get(MAILTO.len()..).unwrap_or_default();
    if rest.contains('#') {
        return Err(RuaError::Character { ch: '#' });
    }
    let to = rest.split_once('?').map_or(rest, |(to, _)| to);
    if to.is_empty() {
        return Err(RuaError::Address {
            reason: "there is no address after mailto:",
        });
    }
    // RFC 6068 §2 separates several addresses with ',', which RFC 8460 §3 requires encoded.
    for addr in to.split("%2C").flat_map(|a| a.split("%2c")) {
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return Err(RuaError::Address {
                reason: "it has no '@'",
            });
        };
        if local.is_empty() {
            return Err(RuaError::Address {
                reason: "the part before '@' is empty",
            });
        }
        if local.contains('@') {
            return Err(RuaError::Address {
                reason: "it has more than one '@'",
            });
        }
        if local.contains(['/', ':', '[', ']']) {
            return Err(RuaError::Address {
                reason: "the part before '@' has a character that must be percent-encoded",
            });
        }
        if !valid_hostname(domain) {
            return Err(RuaError::Address {
                reason: "the domain after '@' is not a fully qualified host name",
            });
        }
    }
    Ok(())
}

fn parse_https(uri: &str, scheme_len: usize) -> Result<String, RuaError> {
    let rest = uri.get(scheme_len + 1..).unwrap_or_default();
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(RuaError::Host {
            reason: "https: must be followed by //host",
        });
    };
    if rest.matches('#').count() > 1 {
        return Err(RuaError::Character { ch: '#' });
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(RuaError::Host {
                reason: "an IPv6 address without its closing ']'",
            });
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(RuaError::Host {
                reason: "the bracketed address is not IPv6",
            });
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(RuaError::Port)?),
        };
        (hostport.get(..addr.len() + 2).unwrap_or_default(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return Err(RuaError::Port);
    }
    if host.is_empty() {
        return Err(RuaError::Host {
            reason: "there is no host",
        });
    }
    if !host.starts_with('[') && host.parse::<Ipv4Addr>().is_err() && !valid_hostname(host) {
        return Err(RuaError::Host {
            reason: "not a fully qualified host name or IP address",
        });
    }
    Ok(host.to_owned())
}

impl FromStr for RuaUri {
    type Err = RuaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((scheme, _)) = s.split_once(':') else {
            return Err(RuaError::MissingScheme);
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(RuaError::MissingScheme);
        }
        check_chars(s)?;
        if scheme.eq_ignore_ascii_case("mailto") {
            parse_mailto(s)?;
            Ok(RuaUri::Mailto(MailtoUri { uri: s.to_owned() }))
        } else if scheme.eq_ignore_ascii_case("https") {
            let host = parse_https(s, scheme.len())?;
            Ok(RuaUri::Https(HttpsUri {
                uri: s.to_owned(),
                host,
            }))
        } else if scheme.eq_ignore_ascii_case("http") {
            Err(RuaError::PlainHttp)
        } else {
            Err(RuaError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            })
        }
    }
}

impl fmt::Display for RuaUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_3_good_uris() {
        let good = [
            "mailto:reports@example.com",
            "MAILTO:Reports@Example.COM",
            "mailto:tls+rpt@mail.example.co.uk?subject=TLS%20report",
            "mailto:a@example.com%2Cb@example.net",
            "https://reporting.example.com/v1/tlsrpt",
            "https://reporting.example.com:8443/v1/tlsrpt?key=abc&x=1#frag",
            "https://192.0.2.1/tlsrpt",
            "https://[2001:db8::1]:443/tlsrpt",
            "https://tlsrpt.example.com",
        ];
        for uri in good {
            let parsed: RuaUri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(parsed.to_string(), uri);
        }
        let Ok(RuaUri::Https(h)) = "https://[2001:db8::1]:443/x".parse() else {
            panic!("not https");
        };
        assert_eq!(h.host(), "[2001:db8::1]");
        let Ok(RuaUri::Mailto(m)) = "mailto:a@example.com?subject=x".parse() else {
            panic!("not mailto");
        };
        assert_eq!(
            (m.address(), m.headers()),
            ("a@example.com", Some("subject=x"))
        );
    }

    #[test]
    fn rfc8460_3_bad_uris() {
        let bad: &[(&str, &str)] = &[
            ("reports@example.com", "no scheme"),
            ("http://example.com/r", "plain http"),
            ("ftp://example.com/r", "other scheme"),
            ("mailto:", "no address"),
            ("mailto:example.com", "no @"),
            ("mailto:@example.com", "empty local part"),
            ("mailto:a@localhost", "not fully qualified"),
            ("mailto:a@exa_mple.com", "underscore in domain"),
            ("mailto:a@example.com!10m", "DMARC size suffix"),
            ("mailto:a b@example.com", "space"),
            ("mailto:a@bücher.de", "U-label instead of A-label"),
            ("mailto:a%2@example.com", "broken percent escape"),
            ("https:/example.com/r", "no //"),
            ("https:///r", "no host"),
            ("https://example.com:99999/r", "port out of range"),
            ("https://example.com:/r", "empty port"),
            ("https://[2001:db8::1/r", "unclosed bracket"),
            ("https://-bad-.example.com/", "label starts with hyphen"),
            ("https://example.com/a#b#c", "two fragments"),
            ("https://example.com/a;b", "semicolon"),
        ];
        for (uri, why) in bad {
            assert!(uri.parse::<RuaUri>().is_err(), "{uri:?}: {why}");
        }
    }
}
