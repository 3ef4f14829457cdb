//! Progress bars on stderr (hidden when stderr is not a terminal).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

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
                ProgressBar::new(total).with_style(style(
                    "{prefix:>12} [{bar:30}] {human_pos}/{human_len} {rate} eta {eta}",
                ))
            } else {
                ProgressBar::new_spinner().with_style(style("{prefix:>12} {human_pos} rows {rate}"))
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

/// A style with `{rate}`: rows per second, whole and grouped ("2,349/s", not "2,349.3573/s").
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", grouped(state.per_sec().round() as u64));
            },
        )
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_and_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(2_349), "2,349");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
