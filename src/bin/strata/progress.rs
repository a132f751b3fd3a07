//! Progress bars on stderr: on a terminal, or as plain lines with `--progress`, never with
//! `--quiet`.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::open::ProgressOptions;

impl ProgressOptions {
    /// A bar for `total` items (`None`: unknown) drawn with `template`.
    pub fn bar(&self, total: Option<u64>, template: &str, what: &str) -> ProgressBar {
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        if self.quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else if io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
        } else if self.progress {
            // Asked for on a pipe or in a log: one plain line per second, no escape codes.
            bar.set_draw_target(ProgressDrawTarget::term_like_with_hz(Box::new(LogLines), 1));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar
    }

    /// A bar over items, counted.
    pub fn items(&self, total: Option<u64>, what: &str) -> ProgressBar {
        let template = match total {
            Some(_) => "{msg} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta}",
            None => "{spinner} {msg}: {human_pos} in {elapsed}",
        };
        self.bar(total, template, what)
    }

    /// A bar over bytes read: of a file when its size is known, else a count.
    pub fn bytes(&self, size: Option<u64>, what: &str) -> ProgressBar {
        let template = match size {
            Some(_) => {
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
            }
            None => "{spinner} {msg} {binary_bytes} read, {binary_bytes_per_sec}",
        };
        self.bar(size, template, what)
    }
}

/// Progress for a log: every redraw becomes a new line on stderr; cursor moves are ignored.
#[derive(Debug)]
struct LogLines;

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        writeln!(io::stderr().lock(), "{line}")
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        if text.trim().is_empty() {
            return Ok(());
        }
        writeln!(io::stderr().lock(), "{text}")
    }

    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
