//! `bounty distill export`: an agent's verified teacher traces as a
//! chat-format JSONL dataset, with a manifest that says what is in it.
//!
//! Distillation is one of Bounty's margin levers: a small local student
//! fine-tuned on what a large teacher did *when the verifier said it
//! worked* can take over the easy tickets. So the dataset holds only
//! resolved outcomes, and the manifest pins down exactly which (the
//! window, the counts per model and agent version, what was skipped and
//! why, the file's sha256), so a training run can be traced back to it.
//!
//! The export streams: rows are read a page at a time and written as
//! they come, so memory stays flat however long the window. The file is
//! written to a temporary file in the target's directory and renamed into
//! place only once complete and synced, so an interrupted export never
//! leaves a partial dataset under the final name, and the manifest is
//! written only after the file it describes.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use bounty_core::{AccountId, AgentId, OutcomeId, TaskId, Timestamp};
use bounty_store::{Store, TraceRow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BadInput;
use crate::cli::{DistillCommand, DistillExportArgs};

/// The manifest's `format`: bump it when a line's or the manifest's shape
/// changes.
const FORMAT: &str = "bounty.distill.v1";

/// Rows read per query.
const PAGE: u32 = 500;

/// The window when `--since` is not given: this long before `--until`.
const DEFAULT_WINDOW_DAYS: i64 = 30;

pub async fn run(cmd: DistillCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        DistillCommand::Export(args) => export(args, store).await,
        DistillCommand::Status(args) => super::student::status(args, store).await,
        DistillCommand::Promote(args) => super::student::promote(args, store).await,
    }
}

/// Who speaks a chat message. The worker writes only these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    User,
    Assistant,
}

/// One message of a transcript, as fine-tuning tools read it.
#[derive(Debug, Serialize, Deserialize)]
struct ChatMessage {
    role: Role,
    content: String,
}

/// Why a resolved task's transcript cannot be a training example. The
/// names are the manifest's `skipped` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// The task has no transcript.
    MissingTranscript,
    /// The transcript is not JSON.
    InvalidJson,
    /// JSON, but not an array of `{role, content}` messages.
    NotMessages,
    /// An array with no messages.
    Empty,
    /// The last message is not the assistant's answer.
    LastNotAssistant,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Skip::MissingTranscript => "missing_transcript",
            Skip::InvalidJson => "invalid_json",
            Skip::NotMessages => "not_messages",
            Skip::Empty => "empty_transcript",
            Skip::LastNotAssistant => "last_not_assistant",
        }
    }
}

/// The conversation in a stored transcript, ending with the assistant's
/// answer, or why it is not one.
fn conversation(transcript: Option<&str>) -> Result<Vec<ChatMessage>, Skip> {
    let text = transcript.ok_or(Skip::MissingTranscript)?;
    let messages: Vec<ChatMessage> = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Skip::NotMessages,
        _ => Skip::InvalidJson,
    })?;
    match messages.last() {
        None => Err(Skip::Empty),
        Some(m) if m.role != Role::Assistant => Err(Skip::LastNotAssistant),
        Some(_) => Ok(messages),
    }
}

/// One JSONL line.
#[derive(Serialize)]
struct Line<'a> {
    messages: &'a [ChatMessage],
    metadata: LineMetadata<'a>,
}

#[derive(Serialize)]
struct LineMetadata<'a> {
    task_id: TaskId,
    outcome_id: OutcomeId,
    agent_version: i32,
    /// The model that wrote the answer; `null` if it was not recorded.
    model: Option<&'a str>,
    decided_at: Timestamp,
}

/// The manifest written beside the dataset.
#[derive(Debug, Serialize)]
struct Manifest {
    format: &'static str,
    /// The dataset's file name (the manifest sits in the same directory).
    file: String,
    account_id: AccountId,
    agent_id: AgentId,
    agent_name: String,
    /// Outcomes decided at or after this time…
    since: Timestamp,
    /// …and before this one.
    until: Timestamp,
    /// Lines in the file.
    records: u64,
    /// Resolved tasks left out, by reason.
    skipped: BTreeMap<&'static str, u64>,
    /// Hex SHA-256 of the whole file.
    sha256: String,
    bytes: u64,
    /// Records per answering model (`unknown` when none was recorded).
    models: BTreeMap<String, u64>,
    /// Records per agent version.
    agent_versions: BTreeMap<i32, u64>,
    created_at: Timestamp,
}

/// The dataset being written: buffered, hashed and counted as it goes.
struct Dataset<W: Write> {
    out: BufWriter<W>,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Dataset<W> {
    fn new(out: W) -> Self {
        Dataset {
            out: BufWriter::new(out),
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    fn write_line(&mut self, line: &Line<'_>) -> anyhow::Result<()> {
        let mut buf = serde_json::to_vec(line).context("cannot encode a trace as JSON")?;
        buf.push(b'\n');
        self.out.write_all(&buf)?;
        self.hash.update(&buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Flushes the buffer; returns the hex SHA-256 and the size.
    fn finish(mut self) -> anyhow::Result<(String, u64)> {
        self.out.flush()?;
        Ok((format!("{:x}", self.hash.finalize()), self.bytes))
    }
}

/// `x.jsonl` → `x.manifest.json`; any other name gets `.manifest.json`
/// appended.
fn manifest_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    out.with_file_name(format!("{stem}.manifest.json"))
}

/// The directory a file goes in (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A progress bar on stderr; indicatif hides it when stderr is not a
/// terminal, so logs and pipes get no escape codes.
fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("exporting traces [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Writes `bytes` to `path` through a temp file in its directory, so the
/// name only ever holds a complete file. Without `force` an existing file
/// is left alone and the write fails.
fn write_atomically(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    persist(tmp, path, force)
}

/// A hidden temp file in `path`'s directory (so the final rename never
/// crosses file systems), removed on drop unless persisted.
fn temp_beside(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".bounty-distill-")
        .suffix(".tmp")
        .tempfile_in(dir_of(path))
        .with_context(|| format!("cannot create a temporary file beside {}", path.display()))
}

/// Renames a finished temp file to `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path, force: bool) -> anyhow::Result<()> {
    let done = if force {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    done.map(drop)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn export(args: DistillExportArgs, store: &Store) -> anyhow::Result<()> {
    let now = store.now();
    let until = args.until.unwrap_or(now);
    let since = args
        .since
        .unwrap_or(until - chrono::Duration::days(DEFAULT_WINDOW_DAYS));
    if since >= until {
        return Err(BadInput(format!(
            "--since {} must be before --until {} (--until is excluded)",
            rfc3339(since),
            rfc3339(until)
        ))
        .into());
    }
    let account = args.account;
    if store.get_account(account).await?.is_none() {
        return Err(BadInput(format!("no account {account} (--account)")).into());
    }
    let Some(agent) = store.find_agent_by_name(account, &args.agent).await? else {
        return Err(BadInput(format!(
            "account {account} has no agent named {:?} (--agent)",
            args.agent
        ))
        .into());
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("distill-{}-{}.jsonl", agent.name, now.format("%Y-%m-%d"))));
    let manifest_out = manifest_path(&out);
    if !args.force {
        for path in [&out, &manifest_out] {
            if path.exists() {
                return Err(BadInput(format!(
                    "{} already exists; pass --force to replace it",
                    path.display()
                ))
                .into());
            }
        }
    }

    let total = store
        .count_resolved_traces(account, agent.id, since, until)
        .await?;
    let bar = progress(total);
    let mut tmp = temp_beside(&out)?;
    let mut dataset = Dataset::new(tmp.as_file_mut());
    let mut records = 0u64;
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut models: BTreeMap<String, u64> = BTreeMap::new();
    let mut agent_versions: BTreeMap<i32, u64> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .resolved_traces(account, agent.id, since, until, after, PAGE)
            .await?;
        for row in &page {
            match conversation(row.transcript.as_deref()) {
                Ok(messages) => {
                    dataset
                        .write_line(&line(row, &messages))
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    records += 1;
                    let model = row.output_model.as_deref().unwrap_or("unknown");
                    *models.entry(model.to_owned()).or_default() += 1;
                    *agent_versions.entry(row.agent_version).or_default() += 1;
                }
                Err(skip) => *skipped.entry(skip.as_str()).or_default() += 1,
            }
            bar.inc(1);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.outcome_id),
            _ => break,
        }
    }
    bar.finish_and_clear();
    let (sha256, bytes) = dataset
        .finish()
        .with_context(|| format!("cannot write {}", out.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", out.display()))?;
    persist(tmp, &out, args.force)?;

    let manifest = Manifest {
        format: FORMAT,
        file: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        account_id: account,
        agent_id: agent.id,
        agent_name: agent.name.clone(),
        since,
        until,
        records,
        skipped,
        sha256,
        bytes,
        models,
        agent_versions,
        created_at: store.now(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    write_atomically(&manifest_out, &json, args.force)?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        println!("{}", summary(&manifest, &out, &manifest_out));
    }
    Ok(())
}

/// `2026-11-01T00:00:00Z`, as the flags take it.
fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn line<'a>(row: &'a TraceRow, messages: &'a [ChatMessage]) -> Line<'a> {
    Line {
        messages,
        metadata: LineMetadata {
            task_id: row.task_id,
            outcome_id: row.outcome_id,
            agent_version: row.agent_version,
            model: row.output_model.as_deref(),
            decided_at: row.decided_at,
        },
    }
}

/// `exported 42 traces of agent support to x.jsonl (…); skipped 1 (…); manifest x.manifest.json`.
fn summary(m: &Manifest, out: &Path, manifest_out: &Path) -> String {
    let skipped: u64 = m.skipped.values().sum();
    let reasons = if m.skipped.is_empty() {
        String::new()
    } else {
        let each: Vec<String> = m.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!(" ({})", each.join(", "))
    };
    format!(
        "exported {} traces of agent {} ({}) decided in [{}, {}) to {} ({} bytes, sha256 {}); \
         skipped {skipped}{reasons}; manifest {}",
        m.records,
        m.agent_name,
        m.agent_id,
        rfc3339(m.since),
        rfc3339(m.until),
        out.display(),
        m.bytes,
        m.sha256,
        manifest_out.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_ends_with_the_assistant() {
        let ok = r#"[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}]"#;
        assert_eq!(conversation(Some(ok)).map(|m| m.len()), Ok(3));
        assert_eq!(conversation(None).err(), Some(Skip::MissingTranscript));
        assert_eq!(conversation(Some("[{")).err(), Some(Skip::InvalidJson));
        assert_eq!(
            conversation(Some(r#"{"role":"user"}"#)).err(),
            Some(Skip::NotMessages)
        );
        assert_eq!(
            conversation(Some(r#"[{"role":"robot","content":"x"}]"#)).err(),
            Some(Skip::NotMessages)
        );
        assert_eq!(conversation(Some("[]")).err(), Some(Skip::Empty));
        assert_eq!(
            conversation(Some(r#"[{"role":"user","content":"u"}]"#)).err(),
            Some(Skip::LastNotAssistant)
        );
    }

    #[test]
    fn the_manifest_sits_beside_the_dataset() {
        assert_eq!(
            manifest_path(Path::new("out/x.jsonl")),
            PathBuf::from("out/x.manifest.json")
        );
        assert_eq!(
            manifest_path(Path::new("data.txt")),
            PathBuf::from("data.txt.manifest.json")
        );
    }
}
