//! `stsward token create|list|revoke` — wiring only (docs/auth.md). A new token is printed
//! once; the store keeps its SHA-256 digest ([`stsward_server::auth::token`]).

use serde_json::Value;
use stsward_server::auth::{self, IssueError};
use stsward_store::TokenId;

use super::access::{Failure, now, print_json, tenant_named, when, with_store};
use crate::Outcome;
use crate::cli::TokenCommand;

pub fn run(c: TokenCommand) -> anyhow::Result<Outcome> {
    match c {
        TokenCommand::Create {
            tenant,
            name,
            common,
        } => {
            let json = common.json;
            with_store(&common, |store| async move {
                let tenant_id = tenant_named(&store, &tenant).await?;
                let (stored, secret) = auth::issue(&store, tenant_id, "--name", &name, now())
                    .await
                    .map_err(|e| match e {
                        IssueError::Name(_) | IssueError::TooMany => {
                            Failure::Refused(e.to_string())
                        }
                        IssueError::Store(s) => Failure::from(s),
                        other => Failure::CannotRun(other.to_string()),
                    })?;
                if json {
                    let mut view = serde_json::to_value(&stored)
                        .map_err(|e| Failure::CannotRun(format!("cannot write JSON: {e}")))?;
                    if let Value::Object(map) = &mut view {
                        map.insert("token".into(), Value::from(secret.token));
                    }
                    return print_json(&view);
                }
                eprintln!(
                    "token {} ({}) created for tenant {tenant}; it is shown this once:",
                    stored.id, stored.name
                );
                println!("{}", secret.token);
                Ok(())
            })
        }
        TokenCommand::List { tenant, common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                let tenant_id = tenant_named(&store, &tenant).await?;
                let tokens = store.api_token_list(tenant_id).await?;
                if json {
                    return print_json(&tokens);
                }
                println!(
                    "{:>6}  {:<14}  {:<24}  {:<20}  {:<20}  REVOKED",
                    "ID", "PREFIX", "NAME", "CREATED", "LAST USED"
                );
                for t in &tokens {
                    println!(
                        "{:>6}  {:<14}  {:<24}  {:<20}  {:<20}  {}",
                        t.id,
                        t.prefix,
                        t.name,
                        when(Some(t.created_at)),
                        when(t.last_used_at),
                        when(t.revoked_at)
                    );
                }
                Ok(())
            })
        }
        TokenCommand::Revoke { id, tenant, common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                let tenant_id = tenant_named(&store, &tenant).await?;
                match store
                    .api_token_revoke(tenant_id, TokenId(id), now())
                    .await?
                {
                    Some(t) if json => print_json(&t),
                    Some(t) => {
                        println!("token {} ({}) of tenant {tenant} revoked", t.id, t.name);
                        Ok(())
                    }
                    None => Err(Failure::Refused(format!(
                        "ID: token {id} is not a token of tenant {tenant} \
                         ('stsward token list --tenant {tenant}' shows them)"
                    ))),
                }
            })
        }
    }
}
