//! Progress bars for `ferry image copy` on a terminal (indicatif). Plain,
//! uncoloured templates, so `NO_COLOR` needs nothing special.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::RegistryError;
use super::digest::Digest;
use super::progress::{BlobOutcome, Reporter};

/// One bar per blob, on stderr.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    style: ProgressStyle,
}

impl Bars {
    pub fn new() -> Self {
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::default(),
            style,
        }
    }

    fn with_bar(&self, digest: &Digest, action: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(digest)
        {
            action(bar);
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for Bars {
    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size).with_style(self.style.clone()));
        bar.set_prefix(digest.hex().chars().take(12).collect::<String>());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(digest.clone(), bar);
        }
    }

    fn blob_progress(&self, digest: &Digest, done: u64) {
        self.with_bar(digest, |bar| bar.set_position(done));
    }

    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        self.with_bar(digest, |bar| {
            let word = match outcome {
                BlobOutcome::Copied => "copied",
                BlobOutcome::Mounted => "mounted",
                BlobOutcome::Skipped => "exists",
            };
            if outcome != BlobOutcome::Copied {
                bar.set_position(bar.length().unwrap_or_default());
            }
            bar.finish_with_message(word);
        });
    }

    fn blob_retrying(&self, digest: &Digest, attempt: u32, error: &RegistryError) {
        self.with_bar(digest, |bar| {
            bar.set_position(0);
            bar.set_message(format!("retry {attempt}: {error}"));
        });
    }
}
