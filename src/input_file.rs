//! Reading the files a user hands Ferry (the plan file, override files,
//! manifests in a work tree): regular files only, and bounded in size, so
//! that a FIFO, a device or a runaway generated file is refused at once
//! with a clear message instead of hanging or exhausting memory.

use std::io::Read;
use std::path::Path;

use crate::diagnostic::{Problem, Problems};

const TOTAL_TOO_LARGE: &str = "ferry::input::total-too-large";

/// The most one manifest, plan or override file may hold. Control Plane
/// manifests are a few KiB each; a whole app's chart output is well under
/// a MiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The most all the manifest files of one run may hold together: parsing
/// keeps a tree with a span on every value, about four times the text's
/// size, so the total is what bounds memory (docs/performance.md).
pub const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    #[error("it is not a regular file (it is {what})")]
    NotRegular { what: &'static str },
    #[error("it is larger than {} MiB", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`]. The type is checked
/// before the file is opened (opening a FIFO would wait for a writer) and
/// the read stops one byte past the limit, whatever the file claims.
pub fn read(path: &Path) -> Result<Vec<u8>, InputFileError> {
    let metadata = std::fs::metadata(path)?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        return Err(InputFileError::NotRegular { what: describe(kind) });
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(InputFileError::TooLarge);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(InputFileError::TooLarge);
    }
    Ok(bytes)
}

/// What the manifest files of one run have used of [`MAX_TOTAL_BYTES`].
#[derive(Debug, Default)]
pub struct TotalBudget {
    used: u64,
}

/// Whether to read a file, after [`TotalBudget::admit`].
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Read,
    /// This file is too large; the others may still be read.
    Skip,
    /// The total is spent: read no more.
    Stop,
}

impl TotalBudget {
    /// [`TotalBudget::take`], with its problem added to `problems`.
    pub fn admit(&mut self, shown: &str, len: u64, problems: &mut Problems) -> Admit {
        match self.take(shown, len) {
            Ok(()) => Admit::Read,
            Err(problem) => {
                let stop = problem.code == TOTAL_TOO_LARGE;
                problems.push(problem);
                if stop { Admit::Stop } else { Admit::Skip }
            }
        }
    }

    /// Counts a file of `len` bytes, shown as `shown`; the problem to
    /// report, once the files read so far go over the total.
    pub fn take(&mut self, shown: &str, len: u64) -> Result<(), Problem> {
        self.used = self.used.saturating_add(len);
        if len > MAX_FILE_BYTES {
            return Err(Problem::new(
                "ferry::input::too-large",
                format!("cannot read {shown}: {}", InputFileError::TooLarge),
            )
            .help("split the resources over several files, or check for generated content"));
        }
        if self.used > MAX_TOTAL_BYTES {
            return Err(Problem::new(
                TOTAL_TOO_LARGE,
                format!(
                    "the manifests hold more than {} MiB together; Ferry stopped reading at {shown}",
                    MAX_TOTAL_BYTES >> 20
                ),
            )
            .help("point `manifests.path` at the app's own folder, or check for generated content"));
        }
        Ok(())
    }
}

/// What kind of file system object `kind` is, in words.
fn describe(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_dir() { "a folder" } else { "not a file" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "kind: secret\n").expect("write");
        assert_eq!(read(&path).expect("read"), b"kind: secret\n");
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = read(dir.path()).expect_err("a folder");
        assert_eq!(error.to_string(), "it is not a regular file (it is a folder)");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success());
        let error = read(&path).expect_err("a FIFO");
        assert_eq!(error.to_string(), "it is not a regular file (it is a FIFO)");
    }

    #[test]
    fn the_total_budget_stops_at_the_file_that_goes_over() {
        let mut budget = TotalBudget::default();
        for index in 0..4 {
            budget.take(&format!("m{index}.yaml"), MAX_FILE_BYTES).expect("within the total");
        }
        let problem = budget.take("m4.yaml", 1).expect_err("over the total");
        assert!(problem.message.contains("stopped reading at m4.yaml"), "{}", problem.message);
        let problem = TotalBudget::default().take("big.yaml", MAX_FILE_BYTES + 1).expect_err("big");
        assert!(problem.message.contains("larger than 4 MiB"), "{}", problem.message);
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.yaml");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_FILE_BYTES + 1).expect("grow");
        assert!(matches!(read(&path), Err(InputFileError::TooLarge)));
        file.set_len(MAX_FILE_BYTES).expect("shrink");
        assert_eq!(read(&path).expect("at the limit").len() as u64, MAX_FILE_BYTES);
    }
}
