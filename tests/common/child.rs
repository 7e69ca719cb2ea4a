//! Child processes with a time limit: wait, and kill when the limit passes, so a hung peer fails
//! its test instead of hanging the run; read a pipe on a thread so a full pipe never blocks the
//! child.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a child ended.
pub struct Ended {
    /// `None` when it could not be waited for.
    pub status: Option<ExitStatus>,
    /// It was killed because `timeout` passed.
    pub timed_out: bool,
}

/// Waits for `child` up to `timeout`, polling every `poll`; kills it when the time is up.
pub fn wait_or_kill(child: &mut Child, timeout: Duration, poll: Duration) -> Ended {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ended {
                    status: Some(status),
                    timed_out: false,
                }
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                return Ended {
                    status: child.wait().ok(),
                    timed_out: true,
                };
            }
            Ok(None) => std::thread::sleep(poll),
            Err(_) => {
                return Ended {
                    status: None,
                    timed_out: false,
                }
            }
        }
    }
}

/// Reads `pipe` to its end on a thread; the text (lossy UTF-8) when joined.
pub fn read_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Echoes the piped stdout of `child` line by line, prefixed with `[label stdout]`, on a thread,
/// and sends what `find` picks from the first line where it picks something (e.g. the address a
/// server says it listens on); the caller waits on the receiver with its own time limit.
pub fn watch_stdout(
    child: &mut Child,
    label: &'static str,
    find: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(found) = find(&line) {
                    let _ = tx.send(found);
                    sent = true;
                }
            }
            println!("[{label} stdout] {line}");
        }
    });
    rx
}
