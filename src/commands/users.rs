//! `bounty users`: dashboard users and operators, created and reset by an
//! operator. A password is read from stdin or generated; a generated one is
//! printed once, and only its argon2id hash is stored. `reset-password
//! --link` prints a one-time reset link instead (the dashboard's own), for
//! someone without a browser session to choose their password.

use std::io::BufRead;

use anyhow::{Context, bail};
use bounty_core::AccountId;
use bounty_store::{Email, ResetHolder, Store, UserRole};
use bounty_web::PasswordHasher;
use bounty_web::password::MIN_PASSWORD_CHARS;

use crate::cli::UsersCommand;

/// A new random password: 20 characters of an unambiguous alphabet (about
/// 110 bits).
pub fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).context("the OS random generator failed")?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// The password: stdin's first line, or a generated one (returned with
/// `true` so it is printed).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok((line, false))
}

fn email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).map_err(|_| anyhow::anyhow!("--email {raw:?} is not an email address"))
}

/// Whose password `reset-password` resets: an operator, or a user (of
/// `account` when given).
async fn reset_holder(
    store: &Store,
    account: Option<AccountId>,
    operator: bool,
    email: &Email,
) -> anyhow::Result<ResetHolder> {
    if operator {
        let found = store.operator_by_email(email).await?;
        let found = found.ok_or_else(|| anyhow::anyhow!("no operator {}", email.as_str()))?;
        return Ok(ResetHolder::Operator(found.id));
    }
    let user = store
        .find_user_by_email(email)
        .await?
        .map(|l| l.user)
        .filter(|u| account.is_none_or(|a| u.account_id == a));
    match (user, account) {
        (Some(u), _) => Ok(ResetHolder::User {
            account: u.account_id,
            user: u.id,
        }),
        (None, Some(account)) => bail!("no user {} in {account}", email.as_str()),
        (None, None) => bail!("no user {}", email.as_str()),
    }
}

pub async fn run(cmd: UsersCommand, store: &Store) -> anyhow::Result<()> {
    let hasher = PasswordHasher::default();
    match cmd {
        UsersCommand::Create {
            account: None,
            email: raw,
            password_stdin,
            ..
        } => {
            let email = email(&raw)?;
            let (password, generated) = password(password_stdin)?;
            let hash = hasher.hash(&password).context("cannot hash the password")?;
            let Some(operator) = store.create_operator(&email, &hash).await? else {
                bail!("an operator with the email {} already exists", email.as_str());
            };
            println!(
                "Created operator {} ({}): signs in at /ops",
                operator.id,
                email.as_str()
            );
            if generated {
                println!("Password (shown once):\n\n    {password}\n");
            }
            Ok(())
        }
        UsersCommand::Create {
            account: Some(account),
            email: raw,
            role,
            password_stdin,
            ..
        } => {
            if store.get_account(account).await?.is_none() {
                bail!("no account {account}");
            }
            let role: UserRole = role
                .parse()
                .map_err(|_| anyhow::anyhow!("--role must be `owner`, `member` or `viewer`"))?;
            let email = email(&raw)?;
            let (password, generated) = password(password_stdin)?;
            let hash = hasher.hash(&password).context("cannot hash the password")?;
            let Some(user) = store.create_user(account, &email, &hash, role).await? else {
                bail!("a user with the email {} already exists", email.as_str());
            };
            println!(
                "Created user {} ({}, {}) of {account}",
                user.id,
                email.as_str(),
                role.as_str()
            );
            if generated {
                println!("Password (shown once):\n\n    {password}\n");
            }
            Ok(())
        }
        UsersCommand::ResetPassword {
            account,
            operator,
            email: raw,
            password_stdin,
            link,
        } => {
            let email = email(&raw)?;
            let holder = reset_holder(store, account, operator, &email).await?;
            if link {
                let path = bounty_web::new_reset_link(store, holder)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot issue a reset link: {e}"))?;
                println!(
                    "One-time link for {} (works once, within {} minutes; nothing changes until it is used).\nOpen it on the dashboard's address:\n\n    {path}\n",
                    email.as_str(),
                    bounty_web::RESET_LINK_TTL.num_minutes()
                );
                return Ok(());
            }
            let (password, generated) = password(password_stdin)?;
            let hash = hasher.hash(&password).context("cannot hash the password")?;
            match holder {
                ResetHolder::User { account, user } => store.set_password(account, user, &hash).await?,
                ResetHolder::Operator(operator) => store.set_operator_password(operator, &hash).await?,
            };
            println!("Password of {} reset; their sessions are ended.", email.as_str());
            if generated {
                println!("New password (shown once):\n\n    {password}\n");
            }
            Ok(())
        }
        UsersCommand::List { account, json } => {
            let users = store.list_users(account).await?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.id.to_string(),
                            "email": u.email.as_str(),
                            "role": u.role.as_str(),
                            "created_at": u.created_at,
                            "last_login_at": u.last_login_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for u in &users {
                    println!(
                        "{}  {:<32} {:<7} last login {}",
                        u.id,
                        u.email.as_str(),
                        u.role.as_str(),
                        u.last_login_at
                            .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339())
                    );
                }
                println!("{} user(s)", users.len());
            }
            Ok(())
        }
    }
}
