//! The demo's master key, kept in its data directory.
//!
//! `serve --demo` without `secrets.master_keys` still needs a key to seal
//! the demo integration's secret with. A key made afresh on every start
//! would leave the secret sealed by the last run unreadable (the
//! integration `broken`), so the first run writes its key to
//! `<data dir>/demo-master-key` (mode 0600: it opens every secret of the
//! demo database) and later runs read it back. The file holds one keyring
//! entry, `demo:<base64>`, the form `secrets.master_keys` takes, so it can
//! be copied into a configuration as it is.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bounty_integrations::{Keyring, SealKey};

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "demo-master-key";
/// The id sealed values name the key by.
const KEY_ID: &str = "demo";

/// Where the key of the demo in `data_dir` is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The demo's keyring: read from `data_dir`, or made and written there on
/// the first run.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Keyring> {
    let file = path(data_dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            warn_if_readable_by_others(&file);
            // The error names the problem, never the key's bytes.
            return text.trim().parse::<Keyring>().with_context(|| {
                format!(
                    "{} is not a demo master key; delete it to make a new one",
                    file.display()
                )
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let key = SealKey::generate().context("the OS random generator failed")?;
    let mut out = create_private(&file).with_context(|| format!("cannot create {}", file.display()))?;
    // Written in parts, so no copy of the key outlives its zeroizing
    // `to_base64`.
    out.write_all(format!("{KEY_ID}:").as_bytes())
        .and_then(|()| out.write_all(key.to_base64().as_bytes()))
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    tracing::info!(path = %file.display(), "demo: master key written (mode 0600)");
    Ok(Keyring::new(KEY_ID.parse().context("the demo key id")?, key))
}

/// Creates `file` for writing, readable by its owner only; fails if it
/// exists (two demos starting at once: the loser reports it).
fn create_private(file: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(file)
}

fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %file.display(), "demo: the master key file is readable by others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_written_once_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bounty-data");
        let first = load_or_create(&data).unwrap();
        let sealed = first.seal(b"whsec_secret", b"acct/int/inbound").unwrap();
        let second = load_or_create(&data).unwrap();
        assert_eq!(
            &*second.open(&sealed, b"acct/int/inbound").unwrap(),
            b"whsec_secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(&data)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(path(&data), "nonsense").unwrap();
        let e = load_or_create(&data).unwrap_err().to_string();
        assert!(e.contains("is not a demo master key"), "{e}");
    }
}
