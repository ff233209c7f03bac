//! Who is asking, and for which tenant (issue 9): password hashing for users, REST API
//! bearer tokens (RFC 6750 §2.1), login throttling, and the names people give tenants,
//! users and tokens.
//!
//! - [`password`]: argon2id (RFC 9106) PHC strings with a random salt; verification spends the
//!   same time for an unknown user as for a wrong password.
//! - [`token`]: new tokens from the system's CSPRNG; only their SHA-256 digest is stored.
//! - [`login`]: a login checks the password under per-user and per-address failure limits
//!   that every replica shares through the store.
//! - [`issue`]: a new token for a tenant, the one path of the CLI and the REST API;
//! - [`bearer`]: a request's bearer token to the tenant it acts for.
//!
//! Nothing here reads the clock: times are arguments.

pub mod bearer;
pub mod issue;
pub mod login;
pub mod password;
pub mod token;

pub use bearer::{BearerError, Caller, LAST_USED_INTERVAL};
pub use issue::{IssueError, MAX_ACTIVE_TOKENS, issue};
pub use login::{LoginError, LoginLimits, ip_key, login};
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordError};
pub use token::{NewTokenSecret, RandomError};

/// The longest tenant, user or token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct NameError {
    /// Which name (`tenant`, `user`, `name`).
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// Checks a tenant or user name: 1 to [`MAX_NAME_CHARS`] of `a-z 0-9 . _ @ -`, starting with
/// a letter or digit. Lower case only, so that `Acme` and `acme` cannot be two tenants.
pub fn check_name(field: &'static str, name: &str) -> Result<(), NameError> {
    let refuse = |reason| Err(NameError { field, reason });
    if name.is_empty() {
        return refuse("is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return refuse("is longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return refuse("may hold only a-z, 0-9, '.', '_', '@' and '-'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return refuse("must start with a letter or a digit");
    }
    Ok(())
}

/// Checks a token's name (a label for people): 1 to [`MAX_NAME_CHARS`] printable
/// characters, no control characters.
pub fn check_label(field: &'static str, label: &str) -> Result<(), NameError> {
    let refuse = |reason| Err(NameError { field, reason });
    if label.trim().is_empty() {
        return refuse("is empty");
    }
    if label.chars().count() > MAX_NAME_CHARS {
        return refuse("is longer than 64 characters");
    }
    if label.chars().any(char::is_control) {
        return refuse("holds a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_good_and_bad() {
        for good in [
            "acme",
            "a",
            "customer-42",
            "ops@acme.example",
            "x_y.z",
            &"a".repeat(64),
        ] {
            assert_eq!(check_name("tenant", good), Ok(()), "{good}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("Acme", "upper case would make two tenants of one"),
            ("-acme", "starts with a dash"),
            (".acme", "starts with a dot"),
            ("ac me", "a space"),
            ("acmé", "not ASCII"),
            ("a/b", "a slash"),
        ];
        for (name, why) in bad {
            let e = check_name("tenant", name).expect_err(why);
            assert_eq!(e.field, "tenant", "{why}");
        }
        assert!(check_name("user", &"a".repeat(65)).is_err(), "too long");
    }

    #[test]
    fn labels_good_and_bad() {
        assert_eq!(check_label("name", "CI deploy (prod) ✓"), Ok(()));
        for (label, why) in [("", "empty"), ("  ", "blank"), ("a\nb", "a newline")] {
            assert!(check_label("name", label).is_err(), "{why}");
        }
        assert!(check_label("name", &"é".repeat(65)).is_err(), "too long");
    }
}
