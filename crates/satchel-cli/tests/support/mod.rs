//! What the tests of `satchel` as a program share: a `satchel serve` process on a port of
//! its own, and plain HTTP/1.1 requests to it.

#![allow(dead_code, clippy::unwrap_used)]

#[path = "../../../satchel/tests/common/mod.rs"]
mod common;

pub(crate) use common::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// Where the server's stderr goes: a file, not a pipe that nobody reads (a full pipe
    /// would block the server once it has logged enough access lines).
    log: tempfile::NamedTempFile,
}

impl Server {
    /// What the server has logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// The first line the server logs that contains `text`, waiting up to 10 s for it.
    pub(crate) fn logged(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log().lines().find(|line| line.contains(text)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "never logged {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_on(framework: &str, envs: &[(&str, &str)], dir: &std::path::Path) -> Server {
    start_with(framework, envs, dir, &[])
}

/// As [`start_on`], with `extra` arguments after `satchel serve`'s own.
pub(crate) fn start_with(
    framework: &str,
    envs: &[(&str, &str)],
    dir: &std::path::Path,
    extra: &[&str],
) -> Server {
    start_at("127.0.0.1", framework, envs, dir, extra)
}

/// As [`start_with`], listening on `host` (reached through the loopback address).
pub(crate) fn start_at(
    host: &str,
    framework: &str,
    envs: &[(&str, &str)],
    dir: &std::path::Path,
    extra: &[&str],
) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_satchel"));
    command
        .args([
            "serve",
            "--framework",
            framework,
            "--bind",
            &format!("{host}:{port}"),
        ])
        .args(extra)
        .current_dir(dir)
        .env_remove("SESSION_TYPE")
        .stdout(Stdio::null());
    let log = tempfile::NamedTempFile::new().unwrap();
    command.stderr(Stdio::from(log.reopen().unwrap()));
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    let server = Server { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "satchel serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn cookie(&self) -> Option<String> {
        let set = self.header("set-cookie")?;
        Some(set.split(';').next().unwrap().to_owned())
    }
}

pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Reply {
    request_as(
        port,
        method,
        path,
        cookie,
        "application/x-www-form-urlencoded",
        body,
    )
}

/// As [`request`], with a body of `content_type`.
pub(crate) fn request_as(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    content_type: &str,
    body: &str,
) -> Reply {
    try_request_as(port, method, path, cookie, content_type, body).unwrap()
}

/// As [`request_as`], failing with the I/O error (a server that does not answer within
/// a minute, one that closes the connection) instead of panicking.
pub(crate) fn try_request_as(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    content_type: &str,
    body: &str,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    // A server that never answers fails the test instead of hanging it.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (k, v) = trimmed.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut body = String::new();
    reader.read_to_string(&mut body)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// The URL in `var`, or `None` after printing why it is missing (a panic under `CI=true`).
pub(crate) fn service(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|url| !url.is_empty())
        .or_else(|| {
            satchel::testing::service_unavailable(var, "unset (source scripts/services.sh)")
        })
}

/// A name no other run of these tests uses at the same time.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}
