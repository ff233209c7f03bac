//! `stsward tenant add|list` — wiring only (docs/auth.md). Tenant names are checked by
//! [`stsward_server::auth::check_name`], as the REST API checks them.

use stsward_server::auth;

use super::access::{Failure, print_json, when, with_store};
use crate::Outcome;
use crate::cli::TenantCommand;

pub fn run(c: TenantCommand) -> anyhow::Result<Outcome> {
    match c {
        TenantCommand::Add { name, common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                auth::check_name("tenant name", &name)
                    .map_err(|e| Failure::Refused(e.to_string()))?;
                let tenant = store.tenant_create(&name, super::access::now()).await?;
                if json {
                    print_json(&tenant)
                } else {
                    println!("tenant {} created (id {})", tenant.name, tenant.id);
                    Ok(())
                }
            })
        }
        TenantCommand::List { common } => {
            let json = common.json;
            with_store(&common, |store| async move {
                let tenants = store.tenant_list().await?;
                if json {
                    return print_json(&tenants);
                }
                println!("{:>6}  {:<32}  CREATED", "ID", "NAME");
                for t in &tenants {
                    println!("{:>6}  {:<32}  {}", t.id, t.name, when(Some(t.created_at)));
                }
                Ok(())
            })
        }
    }
}
