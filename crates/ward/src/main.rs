//! `ward`: the server and its client in one binary.

/// `println!` that ends the process quietly when stdout is closed (`ward … | head`).
macro_rules! say {
    () => { $crate::say(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::say(format_args!("{}\n", format_args!($($arg)*))) };
}

mod cli;
mod client;
mod grant_audit;
mod history;
mod insights;
mod local;
mod login;
mod output;
mod progress;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::Value;
use ward_api::{
    ApproveBody, AuditKey, CheckBody, CheckResult, CheckpointView, CreateRequest, DenyBody, EventView,
    Explanation, ExtendBody, FindingMoveBody, FindingView, GrantView, RequestView, ResourceView, ReviewBody,
    RevokeBody, RuleView, RulesRunBody, RulesRunView, WhoAmI,
};
use ward_core::duration::parse_duration;

use crate::cli::{
    AdminCommand, AuditCommand, Cli, Command, FindingCommand, Format, LogsCommand, Output, PolicyCommand,
    ReportCommand, RulesCommand, TokenCommand,
};
use crate::client::{CliError, Client, typed};

/// mimalloc rather than the system allocator: the store's driver allocates rows on its own
/// thread and ward frees them on another, which glibc's allocator serialises (export and
/// verify run about a fifth faster; docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes to stdout; a reader that went away (a closed pipe) ends ward quietly, as `grep` does.
fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(error) = std::io::stdout().lock().write_fmt(text)
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ward: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ward: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// RFC 3339, or a duration meaning "that long ago".
fn parse_time(flag: &str, text: &str) -> Result<Timestamp, CliError> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    parse_duration(text)
        .map(|secs| Timestamp::now() - SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX)))
        .map_err(|_| {
            CliError::Usage(format!(
                "{flag} `{text}` is neither an RFC 3339 time (2026-01-31T09:00:00Z) nor a duration ago (1h)"
            ))
        })
}

/// Prints the API's JSON with `-o json`, else the readable form `show` draws.
fn render<T: DeserializeOwned>(
    json: bool,
    value: &Value,
    show: impl FnOnce(&T),
) -> Result<ExitCode, CliError> {
    if json {
        print_json(value)?;
    } else {
        show(&typed::<T>(value)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr that more follow and how to see them; stdout keeps the table, or with `-o
/// json` the API's JSON array unchanged.
fn more_follow(next: Option<&str>, cursor: &str, flag: &str) {
    if let Some(value) = next.and_then(|target| client::query_value(target, cursor)) {
        eprintln!("more follow: run the same command with {flag} {value}");
    }
}

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Usage(e.to_string()))?;
    say!("{text}");
    Ok(())
}

/// Prints a filed request (or extension), waiting for its decision with `wait`. Exit 1 when it
/// was denied at once by a rule, or, waiting, when it ended other than approved.
async fn filed(client: &Client, mut value: Value, wait: bool, json: bool) -> Result<ExitCode, CliError> {
    let mut request: RequestView = typed(&value)?;
    if wait {
        while request.state == "pending" {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            value = client.get(&format!("/v1/requests/{}", request.id), &[]).await?;
            request = typed(&value)?;
        }
    }
    if json {
        print_json(&value)?;
    } else {
        output::request(&request);
    }
    Ok(match (wait, request.state.as_str()) {
        (_, "denied") => ExitCode::from(1),
        (true, "approved") | (false, _) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// `ward finding ack|resolve|dismiss ID --comment TEXT`.
async fn move_finding(
    client: &Client,
    id: &str,
    step: &str,
    comment: String,
    json: bool,
) -> Result<ExitCode, CliError> {
    let value = client.post(&format!("/v1/findings/{id}/{step}"), &FindingMoveBody { comment }).await?;
    render(json, &value, |shown: &FindingView| output::finding(shown))
}

/// `--config` may come before the command (`ward --config FILE admin …`) or after it.
fn one_config(before: Option<PathBuf>, after: Option<PathBuf>) -> Result<Option<PathBuf>, CliError> {
    match (before, after) {
        (Some(before), Some(after)) if before != after => Err(CliError::Usage(format!(
            "--config is given twice, as {} and as {}; give it once",
            before.display(),
            after.display()
        ))),
        (before, after) => Ok(after.or(before)),
    }
}

/// Whether the command asks the server with a token (what a kept session is renewed for).
fn talks_to_server(command: &Command) -> bool {
    !reads_config(command)
        && !matches!(command, Command::Quickstart { .. } | Command::Login { .. } | Command::Logout)
        && !matches!(command, Command::Report(args) if args.command.is_some())
}

/// Whether the command reads a configuration file (the others talk to a server).
fn reads_config(command: &Command) -> bool {
    matches!(
        command,
        Command::Serve { .. }
            | Command::Admin { .. }
            | Command::Policy { command: PolicyCommand::Check { .. } | PolicyCommand::Test { .. } }
            | Command::Audit { command: AuditCommand::Verify { .. } }
    )
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let global = cli.global;
    let json = global.output == Output::Json;
    // Without a token given, the session `ward login` kept for this server, renewed if due.
    let token = match (&global.token, talks_to_server(&cli.command)) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => login::session_token(&global.url).await?,
        (None, false) => None,
    };
    let client = || Client::new(&global.url, token.clone(), global.ca_file.as_deref());
    if global.config.is_some() && !reads_config(&cli.command) {
        return Err(CliError::Usage(if matches!(cli.command, Command::Quickstart { .. }) {
            "quickstart serves its own demo world; serve a configuration with `ward serve --config FILE`"
                .into()
        } else {
            "--config is for the local commands (serve, admin, policy check, policy test, audit verify); \
             this one talks to the server at WARD_URL (or --url)"
                .into()
        }));
    }
    let config = |after: Option<PathBuf>| one_config(global.config.clone(), after);
    match cli.command {
        Command::Serve { config: file, new_signing_key, new_redaction_key, new_hmac_key } => {
            let new_keys =
                local::NewKeys { signing: new_signing_key, redaction: new_redaction_key, hmac: new_hmac_key };
            local::serve(config(file)?.as_deref(), new_keys).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Quickstart { history } => {
            local::quickstart(history.as_deref()).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Admin {
            command: AdminCommand::Token { command: TokenCommand::Create { user, ttl, scope, config: file } },
        } => local::create_token(&user, &ttl, &scope, config(file)?.as_deref())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Admin {
            command: AdminCommand::Token { command: TokenCommand::List { user, config: file } },
        } => {
            let tokens = local::list_tokens(user.as_deref(), config(file)?.as_deref()).await?;
            if json {
                print_json(&serde_json::to_value(&tokens).map_err(|e| CliError::Usage(e.to_string()))?)?;
            } else {
                output::tokens(&tokens);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command: AdminCommand::Token { command: TokenCommand::Revoke { id, config: file } },
        } => {
            let token = local::revoke_token(&id, config(file)?.as_deref()).await?;
            if json {
                print_json(&serde_json::to_value(&token).map_err(|e| CliError::Usage(e.to_string()))?)?;
            } else {
                say!(
                    "{} ({}) is revoked since {}",
                    token.id,
                    token.user,
                    token.revoked_at.map(|t| t.to_string()).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Request { resource, role, duration, reason, ticket, breakglass, dry_run: true, .. } => {
            parse_duration(&duration).map_err(|e| CliError::Usage(format!("--for: {e}")))?;
            let mut query =
                vec![("resource", resource), ("role", role), ("duration", duration), ("reason", reason)];
            query.extend(ticket.map(|t| ("ticket", t)));
            if breakglass {
                query.push(("breakglass", "true".to_owned()));
            }
            let value = client()?.get("/v1/policy/explain", &query).await?;
            let explanation: Explanation = typed(&value)?;
            if json {
                print_json(&value)?;
            } else {
                say!("{}: {}", explanation.decision, explanation.why);
            }
            Ok(if explanation.decision == "denied" { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Request {
            resource,
            role,
            duration,
            reason,
            ticket,
            start_at,
            wait,
            breakglass,
            dry_run: false,
        } => {
            let duration_seconds =
                parse_duration(&duration).map_err(|e| CliError::Usage(format!("--for: {e}")))?;
            let start_at = start_at.map(|s| parse_time("--start-at", &s)).transpose()?;
            let body = CreateRequest {
                resource,
                role,
                duration_seconds: Some(duration_seconds),
                duration: None,
                reason,
                ticket,
                start_at,
                breakglass,
            };
            let client = client()?;
            let value = client.post("/v1/requests", &body).await?;
            filed(&client, value, wait, json).await
        }
        Command::Extend { id, duration, reason, ticket, wait } => {
            let duration_seconds =
                parse_duration(&duration).map_err(|e| CliError::Usage(format!("--for: {e}")))?;
            let body =
                ExtendBody { duration_seconds: Some(duration_seconds), duration: None, reason, ticket };
            let client = client()?;
            let value = client.post(&format!("/v1/grants/{id}/extend"), &body).await?;
            filed(&client, value, wait, json).await
        }
        Command::Review { id, comment } => {
            let value = client()?.post(&format!("/v1/grants/{id}/review"), &ReviewBody { comment }).await?;
            render(json, &value, |shown: &GrantView| output::grant(shown, Timestamp::now()))
        }
        Command::Requests { state, mine, after, limit } => {
            let mut query = vec![];
            query.extend(state.map(|s| ("state", s)));
            if mine {
                query.push(("mine", "true".to_owned()));
            }
            query.extend(after.map(|a| ("after", a)));
            query.extend(limit.map(|l| ("limit", l.to_string())));
            let (value, next) = client()?.get_page("/v1/requests", &query).await?;
            let code = render(json, &value, |shown: &Vec<RequestView>| output::requests(shown))?;
            more_follow(next.as_deref(), "after", "--after");
            Ok(code)
        }
        Command::Show { id } => {
            let client = client()?;
            if id.starts_with("grt_") {
                let value = client.get(&format!("/v1/grants/{id}"), &[]).await?;
                render(json, &value, |shown: &GrantView| output::grant(shown, Timestamp::now()))
            } else {
                let value = client.get(&format!("/v1/requests/{id}"), &[]).await?;
                render(json, &value, |shown: &RequestView| output::request(shown))
            }
        }
        Command::Approve { id, comment } => {
            let value =
                client()?.post(&format!("/v1/requests/{id}/approve"), &ApproveBody { comment }).await?;
            render(json, &value, |shown: &RequestView| output::request(shown))
        }
        Command::Deny { id, comment } => {
            let value = client()?.post(&format!("/v1/requests/{id}/deny"), &DenyBody { comment }).await?;
            render(json, &value, |shown: &RequestView| output::request(shown))
        }
        Command::Cancel { id } => {
            let value = client()?.post(&format!("/v1/requests/{id}/cancel"), &serde_json::json!({})).await?;
            render(json, &value, |shown: &RequestView| output::request(shown))
        }
        Command::Grants { active, mine, unreviewed, after, limit } => {
            let mut query = vec![];
            if active {
                query.push(("active", "true".to_owned()));
            }
            if unreviewed {
                query.push(("unreviewed", "true".to_owned()));
            }
            if mine {
                query.push(("mine", "true".to_owned()));
            }
            query.extend(after.map(|a| ("after", a)));
            query.extend(limit.map(|l| ("limit", l.to_string())));
            let (value, next) = client()?.get_page("/v1/grants", &query).await?;
            let code =
                render(json, &value, |shown: &Vec<GrantView>| output::grants(shown, Timestamp::now()))?;
            more_follow(next.as_deref(), "after", "--after");
            Ok(code)
        }
        Command::Findings { state, rule, severity, since, after, limit } => {
            let mut query = vec![];
            query.extend(state.map(|s| ("state", s)));
            query.extend(rule.map(|r| ("rule", r)));
            query.extend(severity.map(|s| ("severity", s)));
            if let Some(since) = since {
                query.push(("since", parse_time("--since", &since)?.to_string()));
            }
            query.extend(after.map(|a| ("after", a)));
            query.extend(limit.map(|l| ("limit", l.to_string())));
            let (value, next) = client()?.get_page("/v1/findings", &query).await?;
            let code = render(json, &value, |shown: &Vec<FindingView>| output::findings(shown))?;
            more_follow(next.as_deref(), "after", "--after");
            Ok(code)
        }
        Command::Finding { command: FindingCommand::Show { id } } => {
            let value = client()?.get(&format!("/v1/findings/{id}"), &[]).await?;
            render(json, &value, |shown: &FindingView| output::finding(shown))
        }
        Command::Finding { command: FindingCommand::Ack { id, comment } } => {
            move_finding(&client()?, &id, "acknowledge", comment, json).await
        }
        Command::Finding { command: FindingCommand::Resolve { id, comment } } => {
            move_finding(&client()?, &id, "resolve", comment, json).await
        }
        Command::Finding { command: FindingCommand::Dismiss { id, comment } } => {
            move_finding(&client()?, &id, "dismiss", comment, json).await
        }
        Command::Rules { command: None } => {
            let value = client()?.get("/v1/rules", &[]).await?;
            render(json, &value, |shown: &Vec<RuleView>| output::rules(shown))
        }
        Command::Rules { command: Some(RulesCommand::Run { since, until }) } => {
            let body = RulesRunBody {
                since: parse_time("--since", &since)?,
                until: until.map(|u| parse_time("--until", &u)).transpose()?,
            };
            let progress = progress::spinner("running the rules over the period on the server");
            let value = client()?.call_period(reqwest::Method::POST, "/v1/rules/run", &[], Some(&body)).await;
            progress.finish_and_clear();
            let value = value?;
            render(json, &value, |run: &RulesRunView| {
                say!(
                    "{} events from {} to {}: {} findings opened, {} updated, {} already recorded",
                    run.events,
                    run.since,
                    run.until,
                    run.opened,
                    run.updated,
                    run.unchanged
                )
            })
        }
        Command::Report(args) => match &args.command {
            Some(ReportCommand::Verify { dir, key }) => report::verify(dir, key.as_deref(), json),
            None => report::make(&client()?, &args, json).await,
        },
        Command::Insights { since } => {
            let value = client()?
                .call_period(
                    reqwest::Method::GET,
                    "/v1/insights",
                    &insights::query(since.as_deref())?,
                    None::<&()>,
                )
                .await?;
            render(json, &value, insights::show)
        }
        Command::Release { id } => {
            let value = client()?.post(&format!("/v1/grants/{id}/release"), &serde_json::json!({})).await?;
            render(json, &value, |shown: &GrantView| output::grant(shown, Timestamp::now()))
        }
        Command::Credentials { id } => {
            let value =
                client()?.post(&format!("/v1/grants/{id}/credentials"), &serde_json::json!({})).await?;
            render(json, &value, output::credentials)
        }
        Command::Revoke { id, reason } => {
            let value = client()?.post(&format!("/v1/grants/{id}/revoke"), &RevokeBody { reason }).await?;
            render(json, &value, |shown: &GrantView| output::grant(shown, Timestamp::now()))
        }
        Command::Check { principal, action, resource } => {
            let value = client()?.post("/v1/check", &CheckBody { principal, action, resource }).await?;
            let result: CheckResult = typed(&value)?;
            if json {
                print_json(&value)?
            } else {
                output::check(&result, Timestamp::now())
            }
            Ok(if result.allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Policy { command: PolicyCommand::Check { config: file } } => {
            local::check_policies(config(file)?.as_deref(), json)
        }
        Command::Policy { command: PolicyCommand::Reload } => {
            let value = client()?.post("/v1/policy/reload", &serde_json::json!({})).await?;
            let reload: ward_api::PolicyReloadView = typed(&value)?;
            if json {
                print_json(&value)?;
            } else if reload.changed && reload.hash != reload.previous_hash {
                say!(
                    "policies reloaded: {} policies, policy set sha256 {} (was {})",
                    reload.policy_ids.len(),
                    reload.hash,
                    reload.previous_hash
                );
            } else if reload.changed {
                say!(
                    "users and groups reloaded ({} joined, {} left); the policies are unchanged (policy set sha256 {})",
                    reload.directory.users_added.len(),
                    reload.directory.users_removed.len(),
                    reload.hash
                );
            } else {
                say!("the policies are unchanged (policy set sha256 {})", reload.hash);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command: PolicyCommand::Test { file, config: config_file } } => {
            local::test_policies(&file, config(config_file)?.as_deref(), json)
        }
        Command::Audit {
            command: AuditCommand::Verify { config: config_file, format, checkpoint, key, file },
        } => {
            let json = json || format == Format::Json;
            let config = config(config_file)?;
            local::verify(config.as_deref(), json, checkpoint.as_deref(), key.as_deref(), file.as_deref())
                .await
        }
        Command::Logs {
            command: LogsCommand::Search { resource, pattern, since, until, limit, unmasked },
        } => {
            let mut query = Vec::new();
            query.extend(pattern.map(|p| ("pattern", p)));
            if let Some(since) = since {
                query.push(("since", parse_time("--since", &since)?.to_string()));
            }
            if let Some(until) = until {
                query.push(("until", parse_time("--until", &until)?.to_string()));
            }
            query.extend(limit.map(|l| ("limit", l.to_string())));
            if unmasked {
                query.push(("unmasked", "true".to_owned()));
            }
            let mut printer = output::LogPrinter::new(json);
            client()?
                .stream(&format!("/v1/logs/{resource}/search"), &query, &mut printer, &mut |_| {})
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { command: LogsCommand::Tail { resource, lines, follow, unmasked } } => {
            let mut query = Vec::new();
            query.extend(lines.map(|l| ("lines", l.to_string())));
            if follow {
                query.push(("follow", "true".to_owned()));
            }
            if unmasked {
                query.push(("unmasked", "true".to_owned()));
            }
            let mut printer = output::LogPrinter::new(json);
            client()?.stream(&format!("/v1/logs/{resource}/tail"), &query, &mut printer, &mut |_| {}).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Export { format, since, until } } => {
            let mut query = vec![("format", format)];
            if let Some(since) = since {
                query.push(("since", parse_time("--since", &since)?.to_string()));
            }
            if let Some(until) = until {
                query.push(("until", parse_time("--until", &until)?.to_string()));
            }
            let progress = progress::spinner("exporting");
            let mut shown = |received: u64| {
                progress.set_message(format!("exporting: {}", progress::megabytes(received)));
            };
            let exported =
                client()?.stream("/v1/audit/export", &query, &mut std::io::stdout().lock(), &mut shown).await;
            progress.finish_and_clear();
            exported?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Prove { seq, from, to, check, key } } => {
            match (seq, from, to, check) {
                (_, _, _, Some(file)) => local::check_proof(&file, key.as_deref()),
                (Some(seq), _, _, None) => {
                    print_json(
                        &client()?.get("/v1/audit/proofs/inclusion", &[("seq", seq.to_string())]).await?,
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                (None, Some(from), Some(to), None) => {
                    let query = [("from", from.to_string()), ("to", to.to_string())];
                    print_json(&client()?.get("/v1/audit/proofs/consistency", &query).await?)?;
                    Ok(ExitCode::SUCCESS)
                }
                _ => Err(CliError::Usage("give --seq N, --from A --to B, or --check FILE".into())),
            }
        }
        Command::Audit { command: AuditCommand::Grant { id } } => {
            let value = client()?.get(&format!("/v1/grants/{id}/audit"), &[]).await?;
            let audit: ward_api::GrantAuditView = typed(&value)?;
            if json {
                print_json(&value)?;
            } else {
                grant_audit::print(&audit);
            }
            Ok(if grant_audit::failed(&audit) { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Audit { command: AuditCommand::Key } => {
            let value = client()?.get("/v1/audit/key", &[]).await?;
            render(json, &value, |key: &AuditKey| say!("{}", key.verifier_key))
        }
        Command::Audit { command: AuditCommand::Checkpoint { now } } => {
            let client = client()?;
            let value = if now {
                client.post("/v1/audit/checkpoints", &serde_json::json!({})).await?
            } else {
                client.get("/v1/audit/checkpoint", &[]).await?
            };
            // The note exactly as signed, so `> checkpoint.txt` keeps a verifiable copy.
            render(json, &value, |checkpoint: &CheckpointView| say(format_args!("{}", checkpoint.note)))
        }
        Command::Audit {
            command:
                AuditCommand::Events {
                    actor,
                    subject,
                    resource,
                    event_type,
                    request,
                    grant,
                    since,
                    until,
                    after_seq,
                    limit,
                },
        } => {
            let mut query: Vec<(&str, String)> = vec![];
            query.extend(actor.map(|v| ("actor", v)));
            query.extend(subject.map(|v| ("subject", v)));
            query.extend(resource.map(|v| ("resource", v)));
            query.extend(event_type.map(|v| ("type", v)));
            query.extend(request.map(|v| ("request", v)));
            query.extend(grant.map(|v| ("grant", v)));
            if let Some(since) = since {
                query.push(("since", parse_time("--since", &since)?.to_string()));
            }
            if let Some(until) = until {
                query.push(("until", parse_time("--until", &until)?.to_string()));
            }
            query.extend(after_seq.map(|v| ("after_seq", v.to_string())));
            query.extend(limit.map(|v| ("limit", v.to_string())));
            let (value, next) = client()?.get_page("/v1/audit/events", &query).await?;
            let code = render(json, &value, |shown: &Vec<EventView>| output::events(shown))?;
            more_follow(next.as_deref(), "after_seq", "--after-seq");
            Ok(code)
        }
        Command::Resources => {
            let value = client()?.get("/v1/resources", &[]).await?;
            if json {
                print_json(&value)?;
            } else {
                let list: Vec<ResourceView> = typed(&value)?;
                let rows = list
                    .into_iter()
                    .map(|r| vec![r.name, r.kind, r.roles.join(", "), r.description])
                    .collect();
                output::table(&["RESOURCE", "KIND", "ROLES", "DESCRIPTION"], rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Login { flow } => {
            login::login(&global.url, global.ca_file.as_deref(), flow, json).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Logout => login::logout(json).await.map(|()| ExitCode::SUCCESS),
        Command::Whoami => {
            let value = client()?.get("/v1/whoami", &[]).await?;
            if json {
                print_json(&value)?;
            } else {
                let me: WhoAmI = typed(&value)?;
                say!(
                    "{} (groups: {}; ward roles: {}; token scopes: {})",
                    me.name,
                    if me.groups.is_empty() { "none".to_owned() } else { me.groups.join(", ") },
                    if me.roles.is_empty() { "none".to_owned() } else { me.roles.join(", ") },
                    me.scopes.join(", ")
                );
                let until = me.expires_at.map(|at| format!(", until {at}")).unwrap_or_default();
                match (me.via.as_str(), &me.issuer) {
                    ("oidc", Some(issuer)) => say!("signed in through {issuer}{until}"),
                    _ => say!("with ward token {}{until}", me.token_id.as_deref().unwrap_or("?")),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
