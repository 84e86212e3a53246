//! Pull and push progress: one live bar per layer on a terminal, plain lines
//! otherwise (logs, CI).

use crate::render::size;
use api::image::{LayerPhase, TransferEvent};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

struct Layer {
    phase: LayerPhase,
    current: u64,
    total: u64,
    started: Instant,
}

/// Shows transfer events as they arrive.
pub struct Progress {
    tty: bool,
    order: Vec<String>,
    layers: HashMap<String, Layer>,
    drawn: usize,
    last_draw: Option<Instant>,
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

fn phase_word(p: LayerPhase) -> &'static str {
    match p {
        LayerPhase::Downloading => "Downloading",
        LayerPhase::Uploading => "Pushing",
        LayerPhase::Exists => "Already exists",
        LayerPhase::Mounted => "Mounted from another repository",
        LayerPhase::Complete => "Complete",
    }
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            order: Vec::new(),
            layers: HashMap::new(),
            drawn: 0,
            last_draw: None,
        }
    }

    /// Show one event. `Done` and `Error` are left to the caller.
    pub fn show(&mut self, event: &TransferEvent) {
        let TransferEvent::Layer {
            digest,
            phase,
            current,
            total,
        } = event
        else {
            return;
        };
        let now = Instant::now();
        let known = self.layers.contains_key(digest);
        let changed_phase = self.layers.get(digest).is_none_or(|l| l.phase != *phase);
        if !known {
            self.order.push(digest.clone());
        }
        let layer = self.layers.entry(digest.clone()).or_insert(Layer {
            phase: *phase,
            current: 0,
            total: 0,
            started: now,
        });
        layer.phase = *phase;
        layer.current = *current;
        layer.total = (*total).max(layer.total);
        if !self.tty {
            if changed_phase {
                let mut line = format!("{}: {}", short(digest), phase_word(*phase));
                if matches!(phase, LayerPhase::Downloading | LayerPhase::Uploading) {
                    line.push_str(&format!(" {}", size(*total)));
                }
                eprintln!("{line}");
            }
            return;
        }
        let due = self
            .last_draw
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100));
        if changed_phase || due {
            self.draw(now);
        }
    }

    fn draw(&mut self, now: Instant) {
        let mut err = std::io::stderr().lock();
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for d in &self.order {
            let l = &self.layers[d];
            text.push_str("\x1b[2K");
            text.push_str(short(d));
            text.push_str(": ");
            match l.phase {
                LayerPhase::Downloading | LayerPhase::Uploading => {
                    const WIDTH: u64 = 30;
                    let filled = (l.current * WIDTH)
                        .checked_div(l.total)
                        .unwrap_or(0)
                        .min(WIDTH);
                    let secs = now.duration_since(l.started).as_secs_f64().max(0.001);
                    let rate = (l.current as f64 / secs) as u64;
                    text.push_str(&format!(
                        "{:<12} [{}{}] {}/{} {}/s",
                        phase_word(l.phase),
                        "=".repeat(filled as usize),
                        " ".repeat((WIDTH - filled) as usize),
                        size(l.current),
                        size(l.total),
                        size(rate),
                    ));
                }
                p => text.push_str(phase_word(p)),
            }
            text.push('\n');
        }
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
        self.drawn = self.order.len();
        self.last_draw = Some(now);
    }

    /// Draw the final state (on a terminal).
    pub fn finish(&mut self) {
        if self.tty && !self.order.is_empty() {
            self.draw(Instant::now());
        }
    }
}
