//! The data directory is private to the service's user (issue 12 §4): directories are
//! created 0700 and files 0600 whatever the umask, since they hold the database, the mail
//! outbox (recipient links and one-time codes in clear) and, in development, the master key.
//!
//! The modes are set when the entry is created, not afterwards, so that no other user can
//! open it in between; files that already exist are narrowed too.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Creates `path` and its missing parents with mode 0700 (existing directories are left as
/// they are, except `path` itself, which is narrowed to 0700).
pub fn create_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)?;
    narrow(path, 0o700)
}

/// Options creating a file with mode 0600 (the umask can only remove bits, and 0600 has no
/// group or other bits to remove).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Narrows an existing file to mode 0600; a missing file is not an error.
pub fn narrow_file(path: &Path) -> io::Result<()> {
    match narrow(path, 0o600) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))
}

#[cfg(not(unix))]
fn narrow(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
