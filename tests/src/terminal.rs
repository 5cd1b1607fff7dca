//! ct-local's terminal: the functions' output passed through, metric lines short, and the
//! banner's key lines again once a seek's output has pushed them up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// This terminal, shared by the readers of the functions' output: metric lines shortened
/// (unless `--verbose`), and the banner's key lines printed again once a seek's output has
/// pushed them up.
#[derive(Clone)]
pub struct Terminal {
    pub verbose: bool,
    state: Arc<Mutex<Shown>>,
}

struct Shown {
    /// The banner's key lines, once the banner is out.
    again: Vec<String>,
    /// Seek printed since the banner was last shown.
    owed: bool,
    /// When a function last printed.
    last: Instant,
}

impl Terminal {
    pub fn new(verbose: bool) -> Self {
        Self {
            verbose,
            state: Arc::new(Mutex::new(Shown {
                again: Vec::new(),
                owed: false,
                last: Instant::now(),
            })),
        }
    }

    /// Passes one line of a function's output through as `[name] line`; a metric line is
    /// shown short unless `--verbose`.
    pub fn line(&self, name: &str, line: &str) {
        let short = if self.verbose {
            None
        } else {
            crate::render::metrics(line)
        };
        eprintln!("[{name}] {}", short.as_deref().unwrap_or(line));
        let mut shown = self.state.lock().unwrap();
        shown.last = Instant::now();
        if name == "seek" && !shown.again.is_empty() {
            shown.owed = true;
        }
    }

    /// Prints the banner; `again` (its key lines) are printed again after each seek's output.
    pub fn banner(&self, lines: &[String], again: Vec<String>) {
        for l in lines {
            println!("{l}");
        }
        self.state.lock().unwrap().again = again;
        let state = self.state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let mut shown = state.lock().unwrap();
                // Once the output has been quiet for a second: a seek's lines come together.
                if shown.owed && shown.last.elapsed() >= Duration::from_secs(1) {
                    shown.owed = false;
                    for l in &shown.again {
                        println!("{l}");
                    }
                }
            }
        });
    }
}
