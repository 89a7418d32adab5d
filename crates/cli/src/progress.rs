//! Progress on stderr for the commands that take seconds (`demo`, `bench`), drawn by
//! indicatif, on a terminal only: when stderr is a file or a pipe (a CI log), nothing is
//! drawn, so no carriage returns or escape sequences end up in it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress is drawn: not `quiet`, and stderr is a terminal.
pub fn shown(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A progress bar on stderr of `len` steps (`None`: a count without an end), drawn with the
/// indicatif `template` at most ten times a second; hidden (it draws nothing) unless `shown`.
pub fn bar(shown: bool, len: Option<u64>, template: &str) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(style(template));
    bar
}

/// The style of `template`, or indicatif's default bar if the template does not parse (the
/// templates are constants, each checked by a test).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Whether `template` is one indicatif can draw.
pub fn template_parses(template: &str) -> bool {
    ProgressStyle::with_template(template).is_ok()
}
