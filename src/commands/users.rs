//! `bounty users`: dashboard users, created and reset by an operator. A
//! password is read from stdin or generated; a generated one is printed
//! once, and only its argon2id hash is stored.

use std::io::BufRead;

use anyhow::{Context, bail};
use bounty_store::{Email, Store, UserRole};
use bounty_web::PasswordHasher;

use crate::cli::UsersCommand;

/// The shortest password accepted from stdin.
const MIN_PASSWORD_CHARS: usize = 12;

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
                .map_err(|_| anyhow::anyhow!("--role must be `owner` or `member`"))?;
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
            email: raw,
            password_stdin,
        } => {
            let email = email(&raw)?;
            let user = store
                .find_user_by_email(&email)
                .await?
                .filter(|u| u.user.account_id == account)
                .ok_or_else(|| anyhow::anyhow!("no user {} in {account}", email.as_str()))?;
            let (password, generated) = password(password_stdin)?;
            let hash = hasher.hash(&password).context("cannot hash the password")?;
            store.set_password(account, user.user.id, &hash).await?;
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
