//! Provisioners: access in another system made for a grant's window and taken away at its end.
//! One interface ([`Provisioner`]: apply, remove; each idempotent, each retried by the caller)
//! for the `postgres-role` logins and for everything else:
//!
//! - `provisioner = "command"`: a program of the operator's, run without a shell:
//!   `PROGRAM ARGS… apply GRANT_ID HOLDER ROLE VALID_UNTIL` and
//!   `PROGRAM ARGS… remove GRANT_ID HOLDER ROLE`, exit 0 once done (for `remove`, it may print
//!   how many sessions it ended).
//! - `provisioner = "webhook"`: `POST URL` with `{"action": "apply" | "remove", "grant_id",
//!   "holder", "role", "resource", "valid_until"}`, signed as Standard Webhooks says with the
//!   secret in `secret_file`; any 2xx (for `remove`, `{"sessions_ended": N}` may say more).
//!
//! Their account is the holder's name; a `postgres-role` login's is its own
//! ([`crate::login::account_name`]).
//!
//! With `drift = "report" | "revert"`, a program or a webhook is also asked who holds the access
//! now, to find access ward did not make (a `postgres-role` login's target is always asked):
//!
//! - `PROGRAM ARGS… holders` prints one holder a line, `ACCOUNT ROLE [GRANTED_BY…]`, and
//!   `PROGRAM ARGS… take-away ACCOUNT ROLE` takes one away (`drift = "revert"`);
//! - the webhook gets `{"action": "holders", "resource"}` and answers `{"holders": [{"holder",
//!   "role", "granted_by"?}]}`, and `{"action": "take-away", "resource", "holder", "role"}`.
//!
//! What a target says of its holders is checked before ward records any of it: names without
//! spaces or control characters, a bounded answer.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::json;

use crate::driver::{DriverError, within};
use crate::login::{LoginTarget, PostgresLogins, account_name};
use crate::settings::{OnDrift, SettingError, TargetUrl, target_url, wrong};

/// A grant's access, as a provisioner makes and removes it.
#[derive(Debug, Clone, Copy)]
pub struct GrantAccess<'a> {
    pub grant_id: &'a str,
    pub resource: &'a str,
    pub role: &'a str,
    /// The account in the target ([`Provisioner::account`]): for a program or a webhook, the
    /// holder's name.
    pub account: &'a str,
    /// The window's end: the target should refuse the access after it, whatever ward does.
    pub valid_until: Timestamp,
}

/// An account found holding a resource's access ([`Provisioner::holders`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub account: String,
    /// The role it holds, where the target says (a program, a webhook); `None`: the resource's
    /// access as a whole (a `postgres-role` login's membership).
    pub role: Option<String>,
    /// Who gave it, where the target says.
    pub granted_by: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.account)?;
        if let Some(role) = &self.role {
            write!(f, " as {role}")?;
        }
        if let Some(by) = &self.granted_by {
            write!(f, " (granted by {by})")?;
        }
        Ok(())
    }
}

/// The longest account or role name a target may say, and who gave it.
const MAX_NAME: usize = 128;
const MAX_GRANTED_BY: usize = 256;
/// The most a program may print of its holders.
const MAX_HOLDERS_OUTPUT: u64 = 64 * 1024;

impl Holder {
    /// A holder as a program or a webhook said it, checked: it goes into events and logs.
    fn said(account: &str, role: &str, granted_by: Option<&str>) -> Result<Self, DriverError> {
        let name = |what: &str, value: &str| {
            let fine = !value.is_empty()
                && value.len() <= MAX_NAME
                && !value.chars().any(|c| c.is_whitespace() || c.is_control());
            if fine {
                Ok(value.to_owned())
            } else {
                Err(DriverError::Refused(format!(
                    "a holder's {what} must be 1 to {MAX_NAME} bytes without spaces or control characters"
                )))
            }
        };
        let granted_by = granted_by.map(str::trim).filter(|by| !by.is_empty());
        if granted_by.is_some_and(|by| by.len() > MAX_GRANTED_BY || by.chars().any(char::is_control)) {
            return Err(DriverError::Refused(format!(
                "who granted a holder's access must be at most {MAX_GRANTED_BY} bytes without control characters"
            )));
        }
        Ok(Self {
            account: name("account", account)?,
            role: Some(name("role", role)?),
            granted_by: granted_by.map(str::to_owned),
        })
    }
}

#[async_trait]
pub trait Provisioner: Send + Sync {
    /// The provisioner's name in events.
    fn driver_name(&self) -> &'static str;
    /// The account the grant's access is made under: the holder's name, unless the target
    /// makes an account of its own.
    fn account(&self, holder: &str, _grant_id: &str) -> String {
        holder.to_owned()
    }
    /// What the access gives, for events: the grant's role, unless the target says otherwise
    /// (the role a login is a member of).
    fn gives(&self, role: &str) -> String {
        role.to_owned()
    }
    /// Makes the access (or brings it up to date: a new `valid_until`).
    async fn apply(&self, access: &GrantAccess<'_>) -> Result<(), DriverError>;
    /// Removes it: the number of the account's sessions that were ended.
    async fn remove(&self, access: &GrantAccess<'_>) -> Result<u64, DriverError>;
    /// How many sessions the account has open now, where the target can tell: an open session
    /// is a use of the grant (its idle timeout). `None`: the target cannot tell.
    async fn open_sessions(&self, _access: &GrantAccess<'_>) -> Result<Option<u64>, DriverError> {
        Ok(None)
    }
    /// The accounts that have `resource`'s access now, where the target can tell and is asked
    /// to: those ward did not make are drift. `None`: not asked.
    async fn holders(&self, _resource: &str) -> Result<Option<Vec<Holder>>, DriverError> {
        Ok(None)
    }
    /// Takes away access ward did not make (`drift = "revert"`).
    async fn take_away(&self, _resource: &str, _holder: &Holder) -> Result<(), DriverError> {
        Err(DriverError::Refused("this provisioner cannot take away access it did not make".into()))
    }
    /// What to do about access ward did not make.
    fn on_drift(&self) -> OnDrift {
        OnDrift::Report
    }
    /// What holding `resource`'s access is, for events.
    fn held(&self, resource: &str) -> String {
        format!("access to {resource}")
    }
}

/// A resource's provisioner as `ward.toml` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionTarget {
    PostgresRole(LoginTarget),
    /// `drift`: whether the program is asked who holds the access, and what to do about access
    /// ward did not make (`None`: not asked).
    Command {
        program: PathBuf,
        args: Vec<String>,
        drift: Option<OnDrift>,
    },
    Webhook {
        url: TargetUrl,
        secret: Vec<u8>,
        drift: Option<OnDrift>,
    },
}

/// The keys of a resource with `provisioner = "command" | "webhook"` (paths resolved).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProvisionKeys<'a> {
    pub provisioner: Option<&'a str>,
    pub command: Option<&'a [String]>,
    pub url_file: Option<&'a std::path::Path>,
    pub url_env: Option<&'a str>,
    /// The webhook's Standard Webhooks secret (`whsec_…`), as read from its file.
    pub secret: Option<&'a str>,
    /// `report` or `revert`: ask the target who holds the access (unset: do not).
    pub drift: Option<&'a str>,
}

impl ProvisionTarget {
    /// Checks a `command` or `webhook` provisioner's keys; `env` reads the environment.
    pub fn from_keys(
        keys: ProvisionKeys<'_>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let drift = keys.drift.map(|drift| OnDrift::from_key(Some(drift))).transpose()?;
        match keys.provisioner {
            Some("command") => {
                for (key, set) in [
                    ("url_file", keys.url_file.is_some()),
                    ("url_env", keys.url_env.is_some()),
                    ("secret_file", keys.secret.is_some()),
                ] {
                    if set {
                        return Err(wrong(key, "the command provisioner takes only `command`"));
                    }
                }
                let command = keys.command.unwrap_or_default();
                match command.split_first() {
                    Some((program, args)) if !program.trim().is_empty() => {
                        Ok(Self::Command { program: PathBuf::from(program), args: args.to_vec(), drift })
                    }
                    _ => Err(wrong(
                        "command",
                        "the program and its first arguments: [\"/usr/local/bin/grant-access\"]",
                    )),
                }
            }
            Some("webhook") => {
                if keys.command.is_some() {
                    return Err(wrong("command", "only the command provisioner runs a program"));
                }
                let secret = keys.secret.ok_or_else(|| {
                    wrong(
                        "secret_file",
                        "the webhook provisioner signs its requests: a file holding `whsec_<base64>`",
                    )
                })?;
                let secret =
                    ward_core::webhook::secret_bytes(secret.trim()).map_err(|e| wrong("secret_file", e))?;
                let url = target_url(keys.url_file, keys.url_env, env, &["http", "https"])?;
                Ok(Self::Webhook { url, secret, drift })
            }
            Some(other) => Err(wrong("provisioner", format!("`{other}`: use `command` or `webhook`"))),
            None => Err(wrong("provisioner", "`command` or `webhook`")),
        }
    }
}

/// The provisioner for `target`.
pub fn provisioner(target: &ProvisionTarget) -> Arc<dyn Provisioner> {
    match target {
        ProvisionTarget::PostgresRole(login) => Arc::new(PostgresLogins::new(login.clone())),
        ProvisionTarget::Command { program, args, drift } => {
            Arc::new(CommandProvisioner { program: program.clone(), args: args.clone(), drift: *drift })
        }
        ProvisionTarget::Webhook { url, secret, drift } => {
            Arc::new(WebhookProvisioner { url: url.clone(), secret: secret.clone(), drift: *drift })
        }
    }
}

#[async_trait]
impl Provisioner for PostgresLogins {
    fn driver_name(&self) -> &'static str {
        "postgres-role"
    }

    fn account(&self, holder: &str, grant_id: &str) -> String {
        account_name(holder, grant_id)
    }

    fn gives(&self, _role: &str) -> String {
        self.member_of().to_owned()
    }

    async fn apply(&self, access: &GrantAccess<'_>) -> Result<(), DriverError> {
        PostgresLogins::apply(self, access.account, access.valid_until).await
    }

    async fn remove(&self, access: &GrantAccess<'_>) -> Result<u64, DriverError> {
        PostgresLogins::remove(self, access.account).await
    }

    async fn open_sessions(&self, access: &GrantAccess<'_>) -> Result<Option<u64>, DriverError> {
        PostgresLogins::open_sessions(self, access.account).await.map(Some)
    }

    async fn holders(&self, _resource: &str) -> Result<Option<Vec<Holder>>, DriverError> {
        let members = self.members().await?;
        let holders = members
            .into_iter()
            .map(|(account, grantor)| Holder { account, role: None, granted_by: Some(grantor) })
            .collect();
        Ok(Some(holders))
    }

    async fn take_away(&self, _resource: &str, holder: &Holder) -> Result<(), DriverError> {
        let granted_by = holder.granted_by.as_deref().ok_or_else(|| {
            DriverError::Refused("a membership is taken away as its grantor gave it".into())
        })?;
        self.revoke_membership(&holder.account, granted_by).await
    }

    fn on_drift(&self) -> OnDrift {
        self.drift()
    }

    fn held(&self, _resource: &str) -> String {
        format!("membership of {}", self.member_of())
    }
}

struct CommandProvisioner {
    program: PathBuf,
    args: Vec<String>,
    drift: Option<OnDrift>,
}

#[async_trait]
impl Provisioner for CommandProvisioner {
    fn driver_name(&self) -> &'static str {
        "command"
    }

    async fn apply(&self, access: &GrantAccess<'_>) -> Result<(), DriverError> {
        let until = access.valid_until.to_string();
        let extra = ["apply", access.grant_id, access.account, access.role, &until];
        within(crate::command::run(&self.program, &self.args, &extra)).await.map(|_| ())
    }

    async fn remove(&self, access: &GrantAccess<'_>) -> Result<u64, DriverError> {
        let extra = ["remove", access.grant_id, access.account, access.role];
        let said = within(crate::command::run(&self.program, &self.args, &extra)).await?;
        Ok(said.parse().unwrap_or(0))
    }

    async fn holders(&self, _resource: &str) -> Result<Option<Vec<Holder>>, DriverError> {
        if self.drift.is_none() {
            return Ok(None);
        }
        let run = crate::command::run_reading(&self.program, &self.args, &["holders"], MAX_HOLDERS_OUTPUT);
        let said = within(run).await?;
        let holders = said
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut fields = line.trim().splitn(3, char::is_whitespace);
                let (account, role) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
                Holder::said(account, role, fields.next())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(holders))
    }

    async fn take_away(&self, _resource: &str, holder: &Holder) -> Result<(), DriverError> {
        let role = holder.role.as_deref().unwrap_or_default();
        let extra = ["take-away", holder.account.as_str(), role];
        within(crate::command::run(&self.program, &self.args, &extra)).await.map(|_| ())
    }

    fn on_drift(&self) -> OnDrift {
        self.drift.unwrap_or_default()
    }
}

struct WebhookProvisioner {
    url: TargetUrl,
    secret: Vec<u8>,
    drift: Option<OnDrift>,
}

/// A webhook's answer to `holders`.
#[derive(serde::Deserialize)]
struct HoldersAnswer {
    holders: Vec<HolderSaid>,
}

#[derive(serde::Deserialize)]
struct HolderSaid {
    holder: String,
    role: String,
    granted_by: Option<String>,
}

impl WebhookProvisioner {
    async fn post(&self, action: &str, access: &GrantAccess<'_>) -> Result<Vec<u8>, DriverError> {
        let body = json!({
            "action": action,
            "grant_id": access.grant_id,
            "resource": access.resource,
            "holder": access.account,
            "role": access.role,
            "valid_until": access.valid_until,
        });
        within(crate::http::post_signed(&self.url, &self.secret, &body)).await
    }
}

#[async_trait]
impl Provisioner for WebhookProvisioner {
    fn driver_name(&self) -> &'static str {
        "webhook"
    }

    async fn apply(&self, access: &GrantAccess<'_>) -> Result<(), DriverError> {
        self.post("apply", access).await.map(|_| ())
    }

    async fn remove(&self, access: &GrantAccess<'_>) -> Result<u64, DriverError> {
        let answer = self.post("remove", access).await?;
        let said: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        Ok(said["sessions_ended"].as_u64().unwrap_or(0))
    }

    async fn holders(&self, resource: &str) -> Result<Option<Vec<Holder>>, DriverError> {
        if self.drift.is_none() {
            return Ok(None);
        }
        let body = json!({ "action": "holders", "resource": resource });
        let answer = within(crate::http::post_signed(&self.url, &self.secret, &body)).await?;
        let said: HoldersAnswer = serde_json::from_slice(&answer).map_err(|e| {
            DriverError::Refused(format!(
                "the answer to `holders` is not {{\"holders\": [{{\"holder\", \"role\"}}]}}: {e}"
            ))
        })?;
        let holders = said
            .holders
            .iter()
            .map(|h| Holder::said(&h.holder, &h.role, h.granted_by.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(holders))
    }

    async fn take_away(&self, resource: &str, holder: &Holder) -> Result<(), DriverError> {
        let body = json!({
            "action": "take-away",
            "resource": resource,
            "holder": holder.account,
            "role": holder.role,
        });
        within(crate::http::post_signed(&self.url, &self.secret, &body)).await.map(|_| ())
    }

    fn on_drift(&self) -> OnDrift {
        self.drift.unwrap_or_default()
    }
}
