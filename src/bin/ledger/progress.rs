//! Progress bars on stderr (hidden when stderr is not a terminal).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// One bar per stage, created on first report.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Reports `done` of `total` for `stage` (`total` 0: unknown, a counter).
    pub fn update(&self, stage: &str, done: u64, total: u64) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(stage.to_owned()).or_insert_with(|| {
            let bar = if total > 0 {
                ProgressBar::new(total).with_style(
                    ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                )
            } else {
                ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{prefix:>12} {pos} rows {per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                )
            };
            self.multi.add(bar.with_prefix(stage.to_owned()))
        });
        if total > 0 {
            bar.set_length(total);
        }
        bar.set_position(done);
    }

    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}
