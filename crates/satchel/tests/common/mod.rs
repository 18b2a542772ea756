//! Helpers shared by the test files: free loopback ports, and server processes of a
//! test's own (to stop, restart or break without disturbing the shared test servers).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// A free loopback port for a server of a test's own, below the ephemeral range, so that
/// a port left free while its server restarts is not handed to another socket meanwhile;
/// each port is handed out once per test process.
pub(crate) fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + u16::try_from(std::process::id() % 1_000).unwrap_or(0) * 10;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(offset < 2_000, "no free port for a private server");
        let port = base + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Sends `signal` (`-STOP`, `-CONT`, …) to the process `pid`. After `-STOP`, waits until
/// every thread of the process has stopped: kill(2) returns once the signal is queued,
/// and a multi-threaded server's threads stop only after one of them has run, so on a
/// busy machine a server could still answer a request sent right after `kill` returned.
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
    if signal != "-STOP" {
        return;
    }
    let started = Instant::now();
    while !all_threads_stopped(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "process {pid} did not stop within 10 s of SIGSTOP"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether every thread of `pid` is stopped (state `T`) or gone, by `/proc/PID/task/*/stat`.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        // The state follows the command name, which is in parentheses and may hold any
        // character: read it after the last ") ".
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            matches!(state, Some('T' | 't' | 'Z' | 'X'))
        })
    })
}

/// A server process of a test's own, listening on `port`: started by [`Process::start`],
/// stopped (with every process it started) by [`Process::stop`] or when dropped, and
/// started again, with the same command line, by [`Process::restart`].
#[derive(Debug)]
pub(crate) struct Process {
    program: String,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Process {
    /// Runs `program` with `args` and waits until it accepts connections on `port`, or
    /// says why it did not within `patience`.
    pub(crate) fn start(
        program: &str,
        args: Vec<String>,
        port: u16,
        patience: Duration,
    ) -> Result<Self, String> {
        let mut process = Self {
            program: program.to_owned(),
            args,
            port,
            child: None,
        };
        process.spawn(patience)?;
        Ok(process)
    }

    /// The port the server listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server again after [`stop`](Self::stop).
    pub(crate) fn restart(&mut self, patience: Duration) -> Result<(), String> {
        self.stop();
        self.spawn(patience)
    }

    /// Kills the server and every process it started (it leads its own process group),
    /// then reaps it.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self, patience: Duration) -> Result<(), String> {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", self.program))?;
        self.child = Some(child);
        let deadline = Instant::now() + patience;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "{} did not listen on port {} within {patience:?}",
                    self.program, self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}
