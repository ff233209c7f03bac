//! `stsward user add|list|disable` — wiring only (docs/auth.md). The password is read
//! without echo on a terminal (rpassword), or from standard input with `--password-stdin`;
//! never from the command line, where other users of the machine could read it. It is
//! hashed with argon2id by [`stsward_server::auth::password`].

use std::io::{BufRead, IsTerminal};

use stsward_server::auth::{self, password};
use stsward_store::{NewUser, Role, User};

use super::access::{Failure, now, print_json, tenant_named, when, with_store};
use crate::Outcome;
use crate::cli::UserCommand;

pub fn run(c: UserCommand) -> anyhow::Result<Outcome> {
    match c {
        UserCommand::Add {
            name,
            tenant,
            admin,
            password_stdin,
            common,
        } => {
            // Checked before asking for a password, so a typo costs no typing.
            if let Err(e) = auth::check_name("user name", &name) {
                eprintln!("stsward: {e}");
                return Ok(Outcome::Problems);
            }
            let hash = match read_password(password_stdin).and_then(|p| {
                password::hash(&p).map_err(|e| match e {
                    password::PasswordError::TooShort | password::PasswordError::TooLong => {
                        Failure::Refused(e.to_string())
                    }
                    other => Failure::CannotRun(other.to_string()),
                })
            }) {
                Ok(hash) => hash,
                Err(Failure::Refused(m)) => {
                    eprintln!("stsward: {m}");
                    return Ok(Outcome::Problems);
                }
                Err(Failure::CannotRun(m)) => {
                    eprintln!("stsward: {m}");
                    return Ok(Outcome::CannotRun);
                }
            };
            let json = common.json;
            with_store(&common, |store| async move {
                let tenant_id = match (&tenant, admin) {
                    (Some(t), _) => Some(tenant_named(&store, t).await?),
                    (None, true) => None,
                    (None, false) => Some(tenant_named(&store, "default").await?),
                };
                let user = store
                    .user_create(&NewUser {
                        tenant: tenant_id,
                        name,
                        password_hash: hash,
                        role: if admin { Role::Admin } else { Role::Member },
                        created_at: now(),
                    })
                    .await?;
                if json {
                    return print_json(&user);
                }
                let scope = match &tenant {
                    _ if user.is_install_admin() => "an install admin".to_string(),
                    Some(t) => format!("{} of tenant {t}", user.role),
                    None => format!("{} of tenant default", user.role),
                };
                println!("user {} created ({scope})", user.name);
                Ok(())
            })
        }
        UserCommand::List { tenant, common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                let scope = match &tenant {
                    Some(t) => Some(tenant_named(&store, t).await?),
                    None => None,
                };
                let users = store.user_list(scope).await?;
                if json {
                    return print_json(&users);
                }
                let names = tenant_names(&store).await?;
                println!(
                    "{:>6}  {:<32}  {:<16}  {:<7}  {:<20}  DISABLED",
                    "ID", "NAME", "TENANT", "ROLE", "CREATED"
                );
                for u in &users {
                    println!(
                        "{:>6}  {:<32}  {:<16}  {:<7}  {:<20}  {}",
                        u.id,
                        u.name,
                        tenant_of(u, &names),
                        u.role.as_str(),
                        when(Some(u.created_at)),
                        if u.disabled { "yes" } else { "no" }
                    );
                }
                Ok(())
            })
        }
        UserCommand::Disable { name, common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                // The command line acts for the install: any user.
                match store.user_set_disabled(None, &name, true).await? {
                    Some(u) if json => print_json(&u),
                    Some(u) => {
                        println!("user {} disabled", u.name);
                        Ok(())
                    }
                    None => Err(Failure::Refused(format!(
                        "NAME: no user is called {name:?} ('stsward user list' shows them)"
                    ))),
                }
            })
        }
    }
}

async fn tenant_names(
    store: &stsward_store::Store,
) -> Result<Vec<(stsward_store::TenantId, String)>, Failure> {
    Ok(store
        .tenant_list()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

fn tenant_of(user: &User, names: &[(stsward_store::TenantId, String)]) -> String {
    match user.tenant {
        None => "(install)".into(),
        Some(id) => names
            .iter()
            .find(|(t, _)| *t == id)
            .map_or_else(|| id.to_string(), |(_, n)| n.clone()),
    }
}

/// The new password: from standard input's first line with `--password-stdin`, else asked
/// twice on the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::CannotRun(format!("reading the password from stdin: {e}")))?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        return Ok(password.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::CannotRun(
            "no terminal to ask the password on: pipe it in with --password-stdin".into(),
        ));
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| Failure::CannotRun(format!("reading the password: {e}")))?;
    let second = rpassword::prompt_password("Password again: ")
        .map_err(|e| Failure::CannotRun(format!("reading the password: {e}")))?;
    if first != second {
        return Err(Failure::Refused("password: the two entries differ".into()));
    }
    Ok(first)
}
