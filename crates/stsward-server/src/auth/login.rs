//! A login: the user's password checked under failure limits per user name and per source
//! address, counted in the store so that every replica sees the same counts.
//!
//! An unknown user, a wrong password and a disabled user get the same answer
//! ([`LoginError::Refused`]) after the same work (one argon2id verification), so the answer
//! and its timing do not tell which names exist. The hashing runs on the blocking pool.

use std::net::IpAddr;

use stsward_store::auth::MAX_NAME_BYTES;
use stsward_store::{LoginScope, Store, StoreError, User};

use super::password;

/// How many failures are allowed, over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per user name within the window.
    pub per_user: i64,
    /// Failures per source address (an IPv6 /64) within the window.
    pub per_ip: i64,
    /// The window, in seconds.
    pub window_secs: i64,
    /// The size of one counting bucket, in seconds: the window slides by this much.
    pub bucket_secs: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_ip: 20,
            window_secs: 15 * 60,
            bucket_secs: 60,
        }
    }
}

/// Why a login did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user, wrong password or disabled user: deliberately one answer.
    #[error("the user name or the password is wrong")]
    Refused,
    /// Too many failures for this user name or from this address; try again later.
    #[error("too many failed logins; try again in {retry_after_secs} seconds")]
    Throttled {
        /// When the window has moved past the failures, at the latest.
        retry_after_secs: i64,
    },
    /// The store failed.
    #[error("the store failed during a login")]
    Store(#[from] StoreError),
    /// The hashing task did not finish (the runtime is shutting down).
    #[error("the password check did not finish")]
    Interrupted,
}

/// The throttling key of a source address: an IPv4 address as is, an IPv6 address by its
/// /64 (one host usually holds a whole /64), an IPv4-mapped IPv6 address as its IPv4 form.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The throttling key of a user name: the name, cut to what the store keeps.
fn user_key(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Logs `name` in with `password` from `source` at `now`.
pub async fn login(
    store: &Store,
    limits: &LoginLimits,
    name: &str,
    password: &str,
    source: IpAddr,
    now: i64,
) -> Result<User, LoginError> {
    let user_key = user_key(name);
    let ip_key = ip_key(source);
    let by_user = store
        .login_failure_count(LoginScope::User, &user_key, now, limits.window_secs)
        .await?;
    let by_ip = store
        .login_failure_count(LoginScope::Ip, &ip_key, now, limits.window_secs)
        .await?;
    if by_user >= limits.per_user || by_ip >= limits.per_ip {
        return Err(LoginError::Throttled {
            retry_after_secs: limits.window_secs,
        });
    }
    let user = if name.len() <= MAX_NAME_BYTES && !name.contains('\0') {
        store.user_by_name(name).await?
    } else {
        None
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let given = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify(&hash, &given),
        None => {
            password::verify_nobody(&given);
            false
        }
    })
    .await
    .map_err(|_| LoginError::Interrupted)?;
    match user {
        Some(user) if matched && !user.disabled => {
            store
                .login_failure_clear(LoginScope::User, &user_key)
                .await?;
            Ok(user)
        }
        _ => {
            store
                .login_failure_record(LoginScope::User, &user_key, now, limits.bucket_secs)
                .await?;
            store
                .login_failure_record(LoginScope::Ip, &ip_key, now, limits.bucket_secs)
                .await?;
            // Buckets the window has passed count for nobody: dropping them here keeps the
            // table as small as the failures of one window, however many names and
            // addresses an attacker tries.
            store
                .login_failure_prune(now.saturating_sub(limits.window_secs))
                .await?;
            Err(LoginError::Refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys() {
        for (ip, key) in [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
            ("::1", "0:0:0:0::/64"),
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(ip_key(ip), key, "{ip}");
        }
    }

    #[test]
    fn user_keys_are_cut_on_a_character_boundary() {
        assert_eq!(user_key("ann"), "ann");
        let long = "é".repeat(200);
        let key = user_key(&long);
        assert!(key.len() <= MAX_NAME_BYTES && long.starts_with(&key));
    }
}
