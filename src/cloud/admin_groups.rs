//! `printbridge cloud admin group list|add|remove`: the group table by hand (specs/groups.md
//! "Administrators may add records by hand"), on the same database as the server. Each change is
//! the store's one transaction, so it is safe while instances run.

use clap::Subcommand;

use crate::model::groups::Status;
use crate::store::groups::NewRecord;
use crate::store::{Store, StoreError};

#[derive(Subcommand, Debug)]
pub enum GroupAdminCommand {
    /// Every record: group, account, printer, address, status, last sign-in, self-disconnection.
    List {
        /// Only this account's records.
        #[arg(long, value_name = "EMAIL")]
        account: Option<String>,
    },
    /// Add a record (or replace the one of the same account and printer).
    Add {
        /// The account's email address.
        account: String,
        /// The printer's id (`id` in the registry, the `{id}` of /ipp/print/{id}).
        printer: String,
        /// The printer's network address (IP or another identifier).
        #[arg(long, value_name = "ADDRESS")]
        address: String,
        /// IN or OUT.
        #[arg(long, default_value = "OUT", value_name = "IN|OUT")]
        status: String,
        /// Time of the last sign-in: "YYYY-MM-DD HH:MM:SS" (UTC) or unix seconds; default now.
        #[arg(long, value_name = "TIME")]
        time: Option<String>,
        /// The group's name when the account has no group yet (default: a new unique name).
        #[arg(long, value_name = "NAME")]
        group: Option<String>,
        /// Self-disconnection ON.
        #[arg(long)]
        self_disconnection: bool,
    },
    /// Remove a record.
    Remove { account: String, printer: String },
}

#[derive(Debug, thiserror::Error)]
pub enum GroupAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("no printer with id {0:?}")]
    NoPrinter(String),
    #[error("no account {0:?}")]
    NoAccount(String),
    #[error("{account} has no record for printer {printer}")]
    NoRecord { account: String, printer: String },
}

fn time_arg(t: &str) -> Result<i64, GroupAdminError> {
    let t = t.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| GroupAdminError::Invalid(format!("bad time {t:?}")));
    }
    parse_time(t).ok_or_else(|| {
        GroupAdminError::Invalid(format!(
            "bad time {t:?}: give \"YYYY-MM-DD HH:MM:SS\" (UTC) or unix seconds"
        ))
    })
}

/// One record as a line of the list.
fn line(r: &crate::model::groups::Record) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        r.group_name,
        r.account,
        r.printer_id,
        r.printer_address,
        r.status.as_str(),
        time_text(r.established_at),
        if r.self_disconnection { "ON" } else { "OFF" }
    )
}

pub async fn run(store: &Store, cmd: GroupAdminCommand, now: i64) -> Result<(), GroupAdminError> {
    match cmd {
        GroupAdminCommand::List { account } => {
            let records = match account {
                Some(a) => store.group_records(&normalize(&a)?).await?,
                None => store.all_group_records(i64::MAX).await?,
            };
            println!("GROUP\tACCOUNT\tPRINTER\tADDRESS\tSTATUS\tTIME\tSELF-DISCONNECTION");
            for r in &records {
                println!("{}", line(r));
            }
            Ok(())
        }
        GroupAdminCommand::Add {
            account,
            printer,
            address,
            status,
            time,
            group,
            self_disconnection,
        } => {
            let account = normalize(&account)?;
            let status = Status::parse(&status.to_ascii_uppercase())
                .ok_or_else(|| GroupAdminError::Invalid("--status is IN or OUT".into()))?;
            let established_at = match time {
                Some(t) => time_arg(&t)?,
                None => now,
            };
            let (address, group) = record_input(&address, group.as_deref().unwrap_or(""))
                .map_err(GroupAdminError::Invalid)?;
            if store.printer(&printer).await?.is_none() {
                return Err(GroupAdminError::NoPrinter(printer));
            }
            if store.user_by_email(&account).await?.is_none() {
                return Err(GroupAdminError::NoAccount(account));
            }
            let r = store
                .admin_put_group_record(
                    &NewRecord {
                        group_name: group,
                        account,
                        printer_id: printer,
                        printer_address: address,
                        status,
                        established_at,
                        self_disconnection,
                    },
                    now,
                )
                .await?;
            println!("added {}", line(&r));
            Ok(())
        }
        GroupAdminCommand::Remove { account, printer } => {
            let account = normalize(&account)?;
            if store.admin_remove_group_record(&account, &printer).await? {
                println!("removed {account} {printer}");
                Ok(())
            } else {
                Err(GroupAdminError::NoRecord { account, printer })
            }
        }
    }
}

fn normalize(email: &str) -> Result<String, GroupAdminError> {
    super::accounts::normalize_email(email).map_err(|e| GroupAdminError::Invalid(e.to_string()))
}

/// "2011-12-01 12:00:00 UTC" for unix seconds.
pub fn time_text(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Unix seconds for `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (UTC), as an administrator types it.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches("UTC").trim().replace('T', " ");
    let with_seconds = if s.matches(':').count() == 1 {
        format!("{s}:00")
    } else {
        s
    };
    let dt: jiff::civil::DateTime = with_seconds.parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// A hand-made record's address and group name, checked: printable, bounded.
pub fn record_input(address: &str, group: &str) -> Result<(String, Option<String>), String> {
    let address = address.trim();
    if address.is_empty() || address.len() > 255 || address.chars().any(char::is_control) {
        return Err("The printer address must be 1 to 255 printable characters.".into());
    }
    let group = group.trim();
    if group.len() > 100 || group.chars().any(char::is_control) {
        return Err("The group name must be at most 100 printable characters.".into());
    }
    Ok((
        address.to_string(),
        (!group.is_empty()).then(|| group.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_either_form() {
        assert_eq!(time_arg("1322740800").unwrap(), 1_322_740_800);
        assert_eq!(time_arg("2011-12-01 12:00:00").unwrap(), 1_322_740_800);
        assert!(time_arg("soon").is_err());
    }
}
