//! Progress of long work (a report, a verification, an export, a rules run) on a terminal:
//! a spinner on stderr with what is going on and for how long; nothing at all when stderr is not
//! a terminal (piped output, scripts, CI), so the command's output stays what it was.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner saying `message`, until it is finished (`finish_and_clear`) or dropped.
pub fn spinner(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// What `received` bytes are, for a spinner's message.
pub fn megabytes(received: u64) -> String {
    format!("{:.1} MB", received as f64 / 1e6)
}
