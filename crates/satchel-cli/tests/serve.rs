//! `satchel serve` as a user runs it: a real process on a real port.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Reply, free_port, request, service, start_at, start_on, start_with, unique};

#[test]
fn the_demo_runs_on_the_filesystem_store_by_default() {
    contract_on_the_default_store("axum");
}

#[test]
fn the_demo_runs_on_actix_web_too() {
    contract_on_the_default_store("actix");
}

fn contract_on_the_default_store(framework: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_on(framework, &[], dir.path());
    let port = server.port;

    let page = request(port, "GET", "/", None, "");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/demo/login\"")
    );
    assert!(
        page.header("set-cookie").is_none(),
        "an empty session sets no cookie"
    );

    let login = request(port, "POST", "/login?uid=7", None, "");
    assert_eq!(login.status, 200);
    let cookie = login.cookie().expect("login sets the cookie");
    assert!(
        dir.path()
            .join("flask_sessions")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );

    let read = request(port, "GET", "/read", Some(&cookie), "");
    assert_eq!(read.body, "7");
    assert_eq!(read.header("vary"), Some("Cookie"));
    let dump = request(port, "GET", "/dump", Some(&cookie), "");
    let data: serde_json::Value = serde_json::from_str(&dump.body).unwrap();
    assert_eq!(data["user_id"], 7);
    assert_eq!(
        data["_user_id"], "7",
        "the log-in binds the session to its user"
    );
    assert_eq!(data.as_object().unwrap().len(), 6);
    assert_eq!(request(port, "POST", "/write", Some(&cookie), "").body, "1");
    assert_eq!(
        request(port, "POST", "/set/extra", Some(&cookie), "").status,
        200
    );
    assert_eq!(
        request(port, "GET", "/count-keys", Some(&cookie), "").body,
        "7"
    );
    assert_eq!(
        request(port, "POST", "/permanent/false", Some(&cookie), "").status,
        200
    );

    let logout = request(port, "POST", "/logout", Some(&cookie), "");
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(request(port, "GET", "/read", Some(&cookie), "").body, "0");

    // /clear removes every key: the emptied session is deleted and its cookie removed.
    let cookie = request(port, "POST", "/login?uid=8", None, "")
        .cookie()
        .unwrap();
    let clear = request(port, "POST", "/clear", Some(&cookie), "");
    assert_eq!(clear.status, 200);
    assert!(clear.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(request(port, "GET", "/dump", Some(&cookie), "").body, "{}");
}

#[test]
fn a_user_sees_and_revokes_every_session_of_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_on("axum", &[("SESSION_TYPE", "memory")], dir.path());
    let port = server.port;
    let log_in = |uid: u32| {
        request(port, "POST", &format!("/login?uid={uid}"), None, "")
            .cookie()
            .unwrap()
    };
    let (first, second, other) = (log_in(42), log_in(42), log_in(43));

    let listed = request(port, "GET", "/user-sessions", Some(&first), "");
    let json: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(json["count"], 2, "{json}");
    let sessions = json["sessions"].as_array().unwrap();
    for session in sessions {
        let fingerprint = session["fingerprint"].as_str().unwrap();
        assert_eq!(fingerprint.len(), 12);
        assert!(!first.contains(fingerprint) && !second.contains(fingerprint));
        for time in ["created", "last_seen", "expires"] {
            assert!(session[time].as_str().unwrap().ends_with('Z'), "{session}");
        }
    }

    let revoked = request(port, "POST", "/logout-all", Some(&second), "");
    assert_eq!(revoked.body, "2");
    assert!(revoked.header("set-cookie").unwrap().contains("Max-Age=0"));
    for cookie in [&first, &second] {
        assert_eq!(request(port, "GET", "/read", Some(cookie), "").body, "0");
    }
    // Another user's session is left alone.
    assert_eq!(request(port, "GET", "/read", Some(&other), "").body, "43");
    let listed = request(port, "GET", "/user-sessions", Some(&other), "");
    assert!(listed.body.contains("\"count\":1"), "{}", listed.body);
}

#[test]
fn the_demo_page_logs_in_counts_and_logs_out_without_javascript() {
    demo_page("axum");
}

#[test]
fn the_demo_page_works_the_same_on_actix_web() {
    demo_page("actix");
}

fn demo_page(framework: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_on(framework, &[("SESSION_TYPE", "memory")], dir.path());
    let port = server.port;

    let login = request(port, "POST", "/demo/login", None, "name=%3Cb%3EAda");
    assert_eq!(login.status, 303);
    let cookie = login.cookie().unwrap();
    let page = request(port, "GET", "/", Some(&cookie), "");
    assert!(
        page.body.contains("Welcome, &lt;b&gt;Ada!"),
        "flash shown, escaped"
    );
    assert!(page.body.contains("Hello, &lt;b&gt;Ada"));
    assert!(page.body.contains("SESSION_TYPE"));
    let again = request(port, "GET", "/", Some(&cookie), "");
    assert!(
        !again.body.contains("Welcome"),
        "a flash message shows once"
    );
    request(port, "POST", "/demo/count", Some(&cookie), "");
    request(port, "POST", "/demo/count", Some(&cookie), "");
    let page = request(port, "GET", "/", Some(&cookie), "");
    assert!(page.body.contains("Counter: <strong>2</strong>"));

    // A second browser logs in as the same user: each page lists both sessions, its own
    // marked, and "log out everywhere else" ends the other one only.
    let elsewhere = request(port, "POST", "/demo/login", None, "name=%3Cb%3EAda")
        .cookie()
        .unwrap();
    for cookie in [&cookie, &elsewhere] {
        let page = request(port, "GET", "/", Some(cookie), "").body;
        let table = page
            .split("id=\"sessions\"")
            .nth(1)
            .expect("a sessions table");
        assert_eq!(table.matches("<tr><td><code>").count(), 2, "{page}");
        assert_eq!(table.matches("this one").count(), 1, "{page}");
    }
    let others = request(port, "POST", "/demo/logout-others", Some(&cookie), "");
    assert_eq!(others.status, 303);
    let page = request(port, "GET", "/", Some(&cookie), "").body;
    assert!(page.contains("Logged out of 1 other session."), "{page}");
    let gone = request(port, "GET", "/", Some(&elsewhere), "").body;
    assert!(
        gone.contains("action=\"/demo/login\""),
        "the other browser is logged out"
    );

    let logout = request(port, "POST", "/demo/logout", Some(&cookie), "");
    let fresh = logout
        .cookie()
        .expect("a new session carries the goodbye message");
    assert_ne!(fresh, cookie);
    let page = request(port, "GET", "/", Some(&fresh), "");
    assert!(page.body.contains("You are logged out."));
    assert!(page.body.contains("action=\"/demo/login\""));
}

#[test]
fn a_bad_setting_stops_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("SESSION_COOKIE_SAMESITE", "sometimes")
        // A developer's usual setting: it must not turn a user's mistake into a trace.
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "bad settings exit with 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("SESSION_COOKIE_SAMESITE") && stderr.contains("sometimes"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
}

#[test]
fn misspelt_settings_are_named_with_the_key_they_meant() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .arg("config")
        .current_dir(dir.path())
        .env("SESION_TYPE", "redis")
        .env("SESSION_COOKIE_SECURED", "true")
        .env("SESSION_ID_LENGTH", "16")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "SESION_TYPE is not a Satchel setting: did you mean SESSION_TYPE?",
        "SESSION_COOKIE_SECURED is not a Satchel setting: did you mean SESSION_COOKIE_SECURE?",
        "SESSION_ID_LENGTH is not a Satchel setting: Flask-Session's key is not offered",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }

    // In a file, an unknown key is an error, with the same hint.
    std::fs::write(dir.path().join("s.toml"), "SESSION_COOKIE_NAEM = \"sid\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(["config", "--config", "s.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SESSION_COOKIE_NAEM")
            && stderr.contains("did you mean SESSION_COOKIE_NAME?"),
        "{stderr}"
    );
}

#[test]
fn satchel_config_prints_toml_that_config_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let first = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .arg("config")
        .current_dir(dir.path())
        .env("SESSION_TYPE", "memory")
        .env("SESSION_KEY_PREFIX", "shop\"eu's:")
        .env("PERMANENT_SESSION_LIFETIME", "12h")
        .env("SECRET_KEY", "a long, random and secret application key")
        .env("SESSION_REDIS", "redis://app:hunter2@127.0.0.1:6379/0")
        .output()
        .unwrap();
    assert!(first.status.success());
    let text = String::from_utf8(first.stdout).unwrap();
    assert!(text.parse::<toml::Table>().is_ok(), "not TOML:\n{text}");
    assert!(
        text.contains("SESSION_TYPE = \"memory\"  # environment"),
        "{text}"
    );
    assert!(text.contains("# default"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("secret application"),
        "{text}"
    );
    std::fs::write(dir.path().join("s.toml"), &text).unwrap();

    // Read back with nothing in the environment: the same values, now from the file.
    let second = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(["config", "--config", "s.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let again = String::from_utf8(second.stdout).unwrap();
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  #").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values(&text), values(&again));
    assert!(
        again.contains("SESSION_TYPE = \"memory\"  # file"),
        "{again}"
    );
}

#[test]
fn failures_that_are_not_bad_settings_exit_with_1_and_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the session directory should be: the setting is well formed, the
    // machine cannot honour it.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "not a directory").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("SESSION_TYPE", "filesystem")
        .env("SESSION_FILE_DIR", blocked.join("sessions"))
        .env("RUST_BACKTRACE", "full")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("SESSION_FILE_DIR"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");

    // A missing settings file is a bad setting.
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(["config", "--config", "missing.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    stops_cleanly("axum", "TERM", "3");
}

#[test]
fn sigterm_stops_the_actix_web_server_cleanly() {
    stops_cleanly("actix", "TERM", "1");
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    stops_cleanly("axum", "INT", "1");
}

#[test]
fn ctrl_c_stops_the_actix_web_server_cleanly() {
    stops_cleanly("actix", "INT", "2");
}

/// Starts a server with `workers` threads, sends it `signal`, and checks that it says so
/// on start, drains and exits with success.
fn stops_cleanly(framework: &str, signal: &str, workers: &str) {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("SESSION_TYPE", "memory"),
        ("TOKIO_WORKER_THREADS", workers),
    ];
    let mut server = start_on(framework, &envs, dir.path());
    assert_eq!(request(server.port, "GET", "/none", None, "").body, "ok");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status} after SIG{signal}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIG{signal}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = server.log();
    let plural = if workers == "1" { "" } else { "s" };
    assert!(
        stderr.contains(&format!(", {workers} worker thread{plural};")),
        "TOKIO_WORKER_THREADS={workers} is in force: {stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes off a terminal: {stderr}"
    );
}

#[test]
fn a_bad_worker_count_stops_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "many"] {
        let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("TOKIO_WORKER_THREADS", bad)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("TOKIO_WORKER_THREADS") && stderr.contains(bad),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn keygen_prints_a_fresh_key_that_signs_sessions() {
    let key = || {
        let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
            .arg("keygen")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let (first, second) = (key(), key());
    assert_eq!(first.len(), 64);
    assert_ne!(first, second);

    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("SESSION_TYPE", "memory"),
        ("SESSION_USE_SIGNER", "true"),
        ("SECRET_KEY", first.as_str()),
    ];
    let server = start_on("axum", &envs, dir.path());
    let cookie = request(server.port, "POST", "/login?uid=4", None, "")
        .cookie()
        .unwrap();
    assert_eq!(cookie.len(), "session=".len() + 43 + 1 + 43, "{cookie}");
    assert_eq!(
        request(server.port, "GET", "/read", Some(&cookie), "").body,
        "4"
    );
}

/// Sends every `(port, method, path)` at one instant from threads of its own, with
/// `cookie`; the replies come back in the order of `requests`.
fn at_once(requests: Vec<(u16, &'static str, String)>, cookie: Option<&str>) -> Vec<Reply> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|(port, method, path)| {
            let (cookie, barrier) = (cookie.map(str::to_owned), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                request(port, method, &path, cookie.as_deref(), "")
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Two `satchel serve` processes on different ports behind one shared store: what one
/// writes the other reads and changes; concurrent requests split across both lose
/// nothing they acknowledged (keys, increments, changes racing a log-in); simultaneous
/// new sessions on both never fail.
fn two_processes_share_one_store(envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let a = start_on("axum", envs, dir.path());
    let b = start_on("actix", envs, dir.path());

    // New sessions created at once on both processes (where MariaDB's gap locks used to
    // deadlock).
    let burst = (0..48)
        .map(|i| {
            let port = if i % 2 == 0 { a.port } else { b.port };
            let path = if i % 4 < 2 {
                format!("/login?uid={i}")
            } else {
                "/set/x".into()
            };
            (port, "POST", path)
        })
        .collect();
    for reply in at_once(burst, None) {
        assert_eq!(reply.status, 200, "{:?}", reply.headers);
        assert!(reply.cookie().is_some());
    }

    let cookie = request(a.port, "POST", "/login?uid=3", None, "")
        .cookie()
        .unwrap();
    assert_eq!(request(b.port, "GET", "/read", Some(&cookie), "").body, "3");
    assert_eq!(
        request(b.port, "POST", "/write", Some(&cookie), "").body,
        "1"
    );
    assert_eq!(
        request(a.port, "POST", "/write", Some(&cookie), "").body,
        "2"
    );

    let port = |i: usize| if i.is_multiple_of(2) { a.port } else { b.port };
    let sets = (0..50)
        .map(|i| (port(i), "POST", format!("/set/k{i}")))
        .collect();
    for reply in at_once(sets, Some(&cookie)) {
        assert_eq!(reply.status, 200);
    }
    // _user_id, user_id, name, roles, csrf, n, and all fifty keys, whichever process
    // answers.
    for port in [a.port, b.port] {
        assert_eq!(
            request(port, "GET", "/count-keys", Some(&cookie), "").body,
            "56"
        );
    }

    // Thirty increments at once: every one kept, each answering its own n.
    let writes = (0..30)
        .map(|i| (port(i), "POST", "/write".into()))
        .collect();
    let mut answered: Vec<u64> = at_once(writes, Some(&cookie))
        .iter()
        .map(|reply| {
            assert_eq!(reply.status, 200);
            reply.body.parse().unwrap()
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, (3..=32).collect::<Vec<_>>());
    let dump = request(a.port, "GET", "/dump", Some(&cookie), "").body;
    assert!(dump.contains("\"n\":32"), "{dump}");

    // Sets racing a log-in: each is carried to the new id or refused, and none hands
    // the browser the old id. (A set that loads after the rotation, in the process that
    // did not rotate, finds no session and starts one of its own, under a new id its
    // answer names: kept there.)
    let mut race: Vec<_> = (0..20)
        .map(|i| (port(i), "POST", format!("/set/r{i}")))
        .collect();
    race.push((a.port, "POST", "/login?uid=4".into()));
    let replies = at_once(race, Some(&cookie));
    let login = replies.last().unwrap();
    assert_eq!(login.status, 200);
    let new = login.cookie().unwrap();
    assert_ne!(new, cookie);
    assert_eq!(request(b.port, "GET", "/read", Some(&new), "").body, "4");
    let kept = request(b.port, "GET", "/dump", Some(&new), "").body;
    for (i, reply) in replies[..20].iter().enumerate() {
        let key = format!("\"r{i}\":true");
        assert_ne!(
            reply.cookie(),
            Some(cookie.clone()),
            "a dead id handed back"
        );
        match (reply.status, reply.cookie()) {
            (200, None) => assert!(kept.contains(&key), "acknowledged r{i} lost: {kept}"),
            (200, Some(own)) => {
                let there = request(a.port, "GET", "/dump", Some(&own), "").body;
                assert!(there.contains(&key), "acknowledged r{i} lost: {there}");
            }
            (409, _) => assert!(!kept.contains(&key), "refused r{i} kept: {kept}"),
            (other, _) => panic!("set r{i} answered {other}"),
        }
    }
    assert_eq!(request(a.port, "GET", "/read", Some(&cookie), "").body, "0");

    let logout = request(b.port, "POST", "/logout", Some(&new), "");
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(request(a.port, "GET", "/read", Some(&new), "").body, "0");
}

#[test]
fn two_processes_sharing_a_file_dir_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "filesystem"),
        ("SESSION_FILE_DIR", shared.to_str().unwrap()),
    ]);
}

#[test]
fn two_processes_sharing_redis_lose_no_update() {
    let Some(url) = service("SATCHEL_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("{}:", unique("scale_out"));
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", &url),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
}

#[test]
fn two_processes_sharing_postgresql_lose_no_update() {
    let Some(url) = service("SATCHEL_TEST_POSTGRES_URL") else {
        return;
    };
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "sqlalchemy"),
        ("SESSION_SQL_URL", &url),
        ("SESSION_SQLALCHEMY_TABLE", "satchel_scale_out"),
    ]);
}

#[test]
fn the_start_up_line_names_the_store_at_its_masked_address() {
    let Some(url) = service("SATCHEL_TEST_POSTGRES_URL") else {
        return;
    };
    // The test server trusts local connections, so any password gets in.
    let with_password = url.replacen("://postgres@", "://postgres:s3cret-pw@", 1);
    assert_ne!(with_password, url, "the URL names user postgres: {url}");
    let dir = tempfile::tempdir().unwrap();
    let server = start_on(
        "axum",
        &[
            ("SESSION_TYPE", "sqlalchemy"),
            ("SESSION_SQL_URL", &with_password),
            ("SESSION_SQLALCHEMY_TABLE", "satchel_scale_out"),
        ],
        dir.path(),
    );
    let line = server.logged("listening on");
    assert!(line.contains(" at postgres://postgres:"), "{line}");
    assert!(line.contains("@127.0.0.1:5432/test"), "{line}");
    assert!(!line.contains("s3cret-pw"), "{line}");
}

#[test]
fn two_processes_sharing_mariadb_lose_no_update() {
    let Some(url) = service("SATCHEL_TEST_MYSQL_URL") else {
        return;
    };
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "sqlalchemy"),
        ("SESSION_SQL_URL", &url),
        ("SESSION_SQLALCHEMY_TABLE", "satchel_scale_out"),
    ]);
}

#[test]
fn two_processes_sharing_memcached_lose_no_update() {
    let Some(servers) = service("SATCHEL_TEST_MEMCACHED") else {
        return;
    };
    let prefix = format!("{}:", unique("scale_out"));
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "memcached"),
        ("SESSION_MEMCACHED", &servers),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
}

#[test]
fn two_processes_sharing_mongodb_lose_no_update() {
    let Some(url) = service("SATCHEL_TEST_MONGODB_URL") else {
        return;
    };
    two_processes_share_one_store(&[
        ("SESSION_TYPE", "mongodb"),
        ("SESSION_MONGODB", &url),
        ("SESSION_MONGODB_COLLECT", &unique("scale_out")),
    ]);
}

/// Runs `satchel <args>` in `dir` with `envs`, expecting success; gives stdout and stderr.
fn satchel(args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .args(args)
        .current_dir(dir)
        .env_remove("SESSION_TYPE")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "satchel {args:?} failed: {stdout}{stderr}"
    );
    (stdout, stderr)
}

/// `satchel migrate` creates the table once and then finds it; sessions that outlive
/// their one-second lifetime are deleted by `satchel cleanup` in batches of two, with
/// progress on stderr, and the live one is kept.
fn migrate_then_cleanup(envs: &[(&str, &str)], fresh_table: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = satchel(&["migrate"], envs, dir.path());
    if fresh_table {
        assert!(first.contains(": created"), "{first}");
    }
    let (second, _) = satchel(&["migrate"], envs, dir.path());
    assert!(
        second.contains("table ") && !second.contains(": created"),
        "{second}"
    );
    assert!(second.contains(": already present"), "{second}");

    // Whatever an earlier run left expired goes first, so the counts below are exact.
    satchel(&["cleanup"], envs, dir.path());
    let short: Vec<(&str, &str)> = envs
        .iter()
        .copied()
        .chain([("PERMANENT_SESSION_LIFETIME", "1")])
        .collect();
    {
        let server = start_on("axum", &short, dir.path());
        for uid in 0..5 {
            let login = request(server.port, "POST", &format!("/login?uid={uid}"), None, "");
            assert!(login.cookie().is_some());
        }
    }
    std::thread::sleep(Duration::from_millis(2100));
    let live = {
        let server = start_on("axum", envs, dir.path());
        let cookie = request(server.port, "POST", "/login?uid=9", None, "")
            .cookie()
            .unwrap();
        (server, cookie)
    };

    let (stdout, stderr) = satchel(&["cleanup", "--batch-size", "2"], envs, dir.path());
    assert!(stderr.contains("5 expired sessions"), "{stderr}");
    assert!(
        stderr.contains("batch 3: deleted 1 rows, 5 of 5 so far"),
        "{stderr}"
    );
    assert!(stdout.contains("deleted 5 expired sessions"), "{stdout}");
    let (server, cookie) = live;
    assert_eq!(
        request(server.port, "GET", "/read", Some(&cookie), "").body,
        "9"
    );
    let (again, _) = satchel(&["cleanup"], envs, dir.path());
    assert!(again.contains("deleted 0 expired sessions"), "{again}");
}

#[test]
fn migrate_and_cleanup_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    migrate_then_cleanup(&[("SESSION_SQL_URL", &url), ("SESSION_TYPE", "sql")], true);
}

/// `satchel migrate` and `cleanup` on the shared server that `var` names, on a table of
/// these tests' own.
fn migrate_then_cleanup_on(var: &str) {
    let Some(url) = service(var) else {
        return;
    };
    migrate_then_cleanup(
        &[
            ("SESSION_SQL_URL", &url),
            ("SESSION_TYPE", "sql"),
            ("SESSION_SQLALCHEMY_TABLE", "satchel_cli_cleanup"),
        ],
        false,
    );
}

#[test]
fn migrate_and_cleanup_on_postgresql() {
    migrate_then_cleanup_on("SATCHEL_TEST_POSTGRES_URL");
}

#[test]
fn migrate_and_cleanup_on_mariadb() {
    migrate_then_cleanup_on("SATCHEL_TEST_MYSQL_URL");
}

/// `satchel check` with `envs`: its exit status, stdout and stderr.
fn check(envs: &[(&str, &str)], dir: &std::path::Path) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
        .arg("check")
        .current_dir(dir)
        .env_remove("SESSION_TYPE")
        .env("RUST_BACKTRACE", "1")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn satchel_check_says_whether_the_settings_and_the_store_work() {
    let dir = tempfile::tempdir().unwrap();
    // The demo's default, the filesystem store: usable.
    let (status, stdout, stderr) = check(&[], dir.path());
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines.iter().all(|line| line.starts_with("ok ")), "{stdout}");
    assert!(
        lines[1].contains("filesystem in flask_sessions"),
        "{stdout}"
    );

    // A bad value: exit 2, the key named, no backtrace.
    let (status, stdout, stderr) = check(&[("SESSION_COOKIE_SECURE", "maybe")], dir.path());
    assert_eq!(status, Some(2), "{stdout}{stderr}");
    assert!(stdout.starts_with("FAIL  settings"), "{stdout}");
    assert!(stderr.contains("SESSION_COOKIE_SECURE"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");

    // A store that is down: exit 1, the store and its key named.
    let closed = format!("redis://127.0.0.1:{}/0", free_port());
    let (status, stdout, stderr) = check(
        &[
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", &closed),
            ("SESSION_STORE_TIMEOUT", "1s"),
        ],
        dir.path(),
    );
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.lines().next().unwrap().starts_with("ok "),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  store     SESSION_REDIS"), "{stdout}");
    assert!(stderr.contains(&format!("redis at {closed}")), "{stderr}");
    assert!(stderr.contains("SESSION_REDIS"), "{stderr}");
}

#[test]
fn satchel_check_reads_from_a_live_redis_and_finds_a_missing_sql_table() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(url) = service("SATCHEL_TEST_REDIS_URL") {
        let (status, stdout, stderr) = check(
            &[("SESSION_TYPE", "redis"), ("SESSION_REDIS", &url)],
            dir.path(),
        );
        assert_eq!(status, Some(0), "{stdout}{stderr}");
        assert!(stdout.contains(&format!("redis at {url}")), "{stdout}");
        assert!(stdout.contains("ok    read"), "{stdout}");
    }
    // A database without the table: the check does not create it, and says what to do.
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("empty.db").display()
    );
    let (status, stdout, stderr) = check(
        &[("SESSION_TYPE", "sql"), ("SESSION_SQL_URL", &database)],
        dir.path(),
    );
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL  read"), "{stdout}");
    assert!(stdout.contains("satchel migrate"), "{stdout}");
}

/// `satchel sessions` on the store `envs` select: three log-ins of one user through
/// `satchel serve`, then list, count, show, revoke one and revoke the rest, as processes.
fn sessions_command_on(envs: &[(&str, &str)], listable: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_on("axum", envs, dir.path());
    let uid = u32::from_le_bytes(
        satchel::SessionId::generate().as_bytes()[..4]
            .try_into()
            .unwrap(),
    )
    .to_string();
    let cookies: Vec<String> = (0..3)
        .map(|_| {
            request(server.port, "POST", &format!("/login?uid={uid}"), None, "")
                .cookie()
                .unwrap()
        })
        .collect();
    let sessions = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_satchel"))
            .arg("sessions")
            .args(args)
            .current_dir(dir.path())
            .env_remove("SESSION_TYPE")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };

    let (status, out, err) = sessions(&["list", "--user", &uid, "--json"]);
    assert_eq!(status, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fingerprints: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), 3, "{out}");
    for cookie in &cookies {
        let id = cookie.split_once('=').unwrap().1;
        assert!(!out.contains(id), "a listing never shows an id");
    }
    let (status, table, _) = sessions(&["list", "--user", &uid]);
    assert_eq!(status, Some(0));
    assert!(
        table.contains(fingerprints[0]) && table.contains("3 session(s)"),
        "{table}"
    );
    assert_eq!(sessions(&["count", "--user", &uid]).1.trim(), "3");
    let (status, out, err) = sessions(&["count"]);
    if listable {
        // A store of its own: the three sessions, not the user's index beside them.
        assert_eq!((status, out.trim()), (Some(0), "3"), "{err}");
        let (_, all, _) = sessions(&["list", "--json"]);
        let all: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
        assert!(
            all.to_string().contains(&format!("\"user\":\"{uid}\"")),
            "{all}"
        );
    } else {
        assert_eq!(status, Some(1));
        assert!(
            err.contains("cannot list") && err.contains("--user"),
            "{err}"
        );
    }
    let (status, shown, _) = sessions(&["show", &fingerprints[1][..8], "--user", &uid, "--json"]);
    assert_eq!(status, Some(0));
    assert!(shown.contains(fingerprints[1]), "{shown}");

    // Destructive commands ask first; without a terminal, --yes is required.
    let (status, _, err) = sessions(&["revoke-user", &uid]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
    let (status, _, err) = sessions(&["show", "nosuch", "--user", &uid]);
    assert_eq!(status, Some(2));
    assert!(err.contains("no live session"), "{err}");

    let (status, out, err) = sessions(&["revoke", fingerprints[0], "--user", &uid, "--yes"]);
    assert_eq!(status, Some(0), "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let (_, out, _) = sessions(&["revoke-user", &uid, "--yes", "--json"]);
    let revoked: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(revoked, serde_json::json!({ "user": uid, "revoked": 2 }));
    assert_eq!(sessions(&["count", "--user", &uid]).1.trim(), "0");
    for cookie in &cookies {
        let read = request(server.port, "GET", "/read", Some(cookie), "");
        assert_eq!(read.body, "0", "a revoked session no longer loads");
    }

    let (status, out, err) = sessions(&["cleanup", "--json"]);
    assert_eq!(status, Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    if listable {
        assert_eq!(report["index_members_dropped"], 0, "{report}");
    } else {
        assert!(report["index_members_dropped"].is_null(), "{report}");
    }
}

#[test]
fn sessions_command_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sessions.db?mode=rwc", dir.path().display());
    sessions_command_on(
        &[("SESSION_TYPE", "sqlalchemy"), ("SESSION_SQL_URL", &url)],
        true,
    );
}

#[test]
fn sessions_command_on_postgres() {
    let Some(url) = service("SATCHEL_TEST_POSTGRES_URL") else {
        return;
    };
    let table = unique("satchel_cli_sessions");
    sessions_command_on(
        &[
            ("SESSION_TYPE", "sqlalchemy"),
            ("SESSION_SQL_URL", &url),
            ("SESSION_SQLALCHEMY_TABLE", &table),
        ],
        true,
    );
}

#[test]
fn sessions_command_on_redis() {
    let Some(url) = service("SATCHEL_TEST_REDIS_URL") else {
        return;
    };
    // Keys of its own: `count` and `list` walk them with SCAN.
    let prefix = format!("{}:", unique("satchel_cli"));
    sessions_command_on(
        &[
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", &url),
            ("SESSION_KEY_PREFIX", &prefix),
        ],
        true,
    );
}

/// `GET /healthz` answers 200 and JSON while the store works, 503 naming the failure
/// while it does not, on both frameworks, and never sets a cookie. It reports the circuit
/// breaker, which its failing check opens (one failure opens it here) and its good check
/// closes; meanwhile requests get SESSION_STORE_FAILURE's answer.
#[test]
fn healthz_follows_the_store() {
    for framework in ["axum", "actix"] {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        let server = start_on(
            framework,
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_FILE_DIR", sessions.to_str().unwrap()),
                ("SESSION_STORE_FAILURE", "unavailable"),
                ("SESSION_BREAKER_FAILURES", "1"),
                ("SESSION_BREAKER_COOLDOWN", "1h"),
            ],
            dir.path(),
        );
        let healthy = request(server.port, "GET", "/healthz", None, "");
        assert_eq!(healthy.status, 200, "{framework}: {}", healthy.body);
        let body: serde_json::Value = serde_json::from_str(&healthy.body).unwrap();
        assert_eq!(body["status"], "ok", "{framework}");
        assert_eq!(body["store"], "filesystem", "{framework}");
        assert!(body["took_ms"].is_u64(), "{body}");
        assert_eq!(body["breaker"], "closed", "{framework}");
        assert_eq!(healthy.header("cache-control"), Some("no-store"));
        assert!(
            healthy.cookie().is_none(),
            "{framework}: a health check sets no cookie"
        );

        std::fs::remove_dir_all(&sessions).unwrap();
        let sick = request(server.port, "GET", "/healthz", None, "");
        assert_eq!(sick.status, 503, "{framework}: {}", sick.body);
        let body: serde_json::Value = serde_json::from_str(&sick.body).unwrap();
        assert_eq!(body["status"], "unavailable", "{framework}");
        assert!(
            body["error"].as_str().unwrap().contains("cannot write to"),
            "{body}"
        );
        assert_eq!(body["breaker"], "open", "{framework}");
        let refused = request(server.port, "POST", "/write", None, "");
        assert_eq!(refused.status, 503, "{framework}: {}", refused.body);
        assert_eq!(refused.header("retry-after"), Some("3600"), "{framework}");
        assert_eq!(refused.header("vary"), Some("Cookie"), "{framework}");
        assert!(refused.cookie().is_none(), "{framework}");

        std::fs::create_dir(&sessions).unwrap();
        let again = request(server.port, "GET", "/healthz", None, "");
        assert_eq!(again.status, 200, "{framework}: {}", again.body);
        let body: serde_json::Value = serde_json::from_str(&again.body).unwrap();
        assert_eq!(body["breaker"], "closed", "{framework}");
        let written = request(server.port, "POST", "/write", None, "");
        assert_eq!(
            (written.status, written.body.as_str()),
            (200, "1"),
            "{framework}"
        );
    }
}

/// `--metrics-bind` serves the documented metrics at `/metrics` in the Prometheus text
/// format: store calls by store, operation and result, their latency as a histogram, and
/// session events; never a session id.
#[test]
fn metrics_are_served_at_the_metrics_bind_address() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let bind = format!("127.0.0.1:{metrics_port}");
    let server = start_with(
        "axum",
        &[("SESSION_TYPE", "memory")],
        dir.path(),
        &["--metrics-bind", &bind],
    );
    let cookie = request(server.port, "POST", "/login?uid=3", None, "")
        .cookie()
        .unwrap();
    assert_eq!(
        request(server.port, "POST", "/write", Some(&cookie), "").body,
        "1"
    );
    assert_eq!(
        request(server.port, "GET", "/read", Some(&cookie), "").body,
        "3"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", metrics_port)).is_err() {
        assert!(Instant::now() < deadline, "no metrics endpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    let scraped = request(metrics_port, "GET", "/metrics", None, "");
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        scraped.headers
    );
    let text = scraped.body;
    // The log-in saves twice: the session, and the entry of its user's index.
    for expected in [
        "satchel_sessions_total{event=\"created\"} 1",
        "satchel_store_operations_total{store=\"memory\",operation=\"save\",result=\"ok\"} 2",
        "satchel_store_operations_total{store=\"memory\",operation=\"update\",result=\"ok\"} 1",
        "satchel_store_operations_total{store=\"memory\",operation=\"load\",result=\"ok\"}",
        "satchel_store_operation_duration_seconds_bucket{store=\"memory\",operation=\"save\",le=\"0.001\"}",
        "satchel_store_operation_duration_seconds_count{store=\"memory\",operation=\"save\"} 2",
        "satchel_breaker_state{store=\"memory\"} 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    let id = cookie.split_once('=').unwrap().1;
    assert!(!text.contains(id), "a session id in the metrics");
}

/// `--log-format json` writes one JSON object a line: the access line of each request
/// names its method, path, status and what became of the session, and no line holds the
/// session's id.
#[test]
fn access_lines_are_logged_as_json() {
    for framework in ["axum", "actix"] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_with(
            framework,
            &[("SESSION_TYPE", "memory"), ("RUST_LOG", "info")],
            dir.path(),
            &["--log-format", "json"],
        );
        let cookie = request(server.port, "POST", "/login?uid=4", None, "")
            .cookie()
            .unwrap();
        request(server.port, "GET", "/read?secret=1", Some(&cookie), "");
        let line = server.logged("\"path\":\"/read\"");
        let access: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(access["target"], "satchel::access", "{line}");
        assert_eq!(access["level"], "INFO", "{line}");
        assert_eq!(access["method"], "GET", "{line}");
        assert_eq!(access["status"], 200, "{line}");
        assert_eq!(access["session"], "read", "{line}");
        assert!(access["micros"].is_u64(), "{line}");
        let login = server.logged("\"path\":\"/login\"");
        assert!(
            login.contains("\"session\":\"created\""),
            "{framework}: {login}"
        );
        let log = server.log();
        for line in log.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|error| panic!("{error}: not JSON: {line}"));
        }
        let id = cookie.split_once('=').unwrap().1;
        assert!(!log.contains(id), "a session id in the log");
        assert!(!log.contains("secret"), "the query string in the log");
    }
}

/// Listening beyond the loopback interface with cookies that may travel over plain HTTP
/// is said at start, with what to do; on the loopback interface (a developer's machine),
/// or with SESSION_COOKIE_SECURE on, nothing is said.
#[test]
fn an_insecure_cookie_on_a_public_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let memory = [("SESSION_TYPE", "memory")];
    let public = start_at("0.0.0.0", "axum", &memory, dir.path(), &[]);
    let warning = public.logged("SESSION_COOKIE_SECURE=false");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("SESSION_COOKIE_SECURE=true"), "{warning}");

    let secure = [
        ("SESSION_TYPE", "memory"),
        ("SESSION_COOKIE_SECURE", "true"),
    ];
    for (host, envs) in [("127.0.0.1", &memory[..]), ("0.0.0.0", &secure[..])] {
        let quiet = start_at(host, "axum", envs, dir.path(), &[]);
        quiet.logged("listening on");
        assert!(
            !quiet.log().contains("SESSION_COOKIE_SECURE=false"),
            "{host}: {}",
            quiet.log()
        );
    }
}
