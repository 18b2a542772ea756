//! The demo of `satchel serve` in a real browser: headless Chromium, driven through
//! ChromeDriver by the WebDriver protocol, logs in with and without "Remember me", counts,
//! sees its sessions from two devices and logs out, and the test reads the browser's own
//! cookie jar after each step.
//!
//! ChromeDriver comes from `scripts/services.sh`, which exports its URL as
//! `SATCHEL_TEST_WEBDRIVER` (and Chromium's path as `SATCHEL_TEST_CHROMIUM`); without it
//! the test skips with a printed reason, and fails under `CI=true`.

#![allow(clippy::unwrap_used)]

#[path = "../../satchel/tests/common/mod.rs"]
mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The name typed into the log-in form: markup and a letter beyond ASCII, which the page
/// must show exactly as typed.
const NAME: &str = "Zoë & <Ada>";

const HOUR: i64 = 60 * 60;
const DAY: i64 = 24 * HOUR;

const NAME_FIELD: &str = "form[action='/demo/login'] input[name='name']";
const REMEMBER_ME: &str = "form[action='/demo/login'] input[type='checkbox'][name='remember']";
const LOG_IN: &str = "form[action='/demo/login'] button";
const COUNT: &str = "form[action='/demo/count'] button";
const COUNTER: &str = "form[action='/demo/count'] strong";
const LOG_OUT: &str = "form[action='/demo/logout'] button";

#[tokio::test]
async fn a_real_browser_logs_in_counts_and_logs_out_on_both_frameworks() {
    let Some(webdriver) = webdriver() else {
        return;
    };
    for framework in ["axum", "actix"] {
        let demo = Demo::start(framework);
        eprintln!("== {framework}: satchel serve at {}", demo.url);
        let first = open_browser(&webdriver)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let second = match open_browser(&webdriver).await {
            Ok(second) => second,
            Err(error) => {
                let _ = first.close().await;
                panic!("{error}");
            }
        };
        // The walk runs as a task of its own, so that a failed assertion in it still lets
        // both browsers be closed here before the failure is passed on.
        let (one, two, url) = (first.clone(), second.clone(), demo.url.clone());
        let walked = tokio::spawn(async move { walk(&one, &two, &url).await }).await;
        for device in [first, second] {
            if let Err(error) = device.close().await {
                eprintln!("closing a browser failed: {error}");
            }
        }
        if let Err(error) = walked {
            eprintln!("satchel serve ({framework}) logged:\n{}", demo.log());
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
            panic!("the walk through the demo did not finish: {error}");
        }
    }
}

/// The walk through the demo at `base`: `first` and `second` are two devices of one user.
async fn walk(first: &Client, second: &Client, base: &str) {
    // a. The log-in form. An untouched, empty session stores nothing: no cookie.
    first.goto(base).await.unwrap();
    assert_eq!(heading(first).await, "Log in");
    assert_eq!(flashes(first).await, Vec::<String>::new());
    assert!(
        session_cookie(first, "a. opened /").await.is_none(),
        "an empty session sets no cookie"
    );

    // b. Log in with "Remember me": a permanent session, its cookie carrying an expiry
    // about 30 days ahead; the welcome is shown once.
    type_name(first).await;
    let remember = first.find(Locator::Css(REMEMBER_ME)).await.unwrap();
    remember.click().await.unwrap();
    assert!(
        remember.is_selected().await.unwrap(),
        "Remember me is ticked"
    );
    submit(first, LOG_IN).await;
    assert_eq!(first.current_url().await.unwrap().path(), "/");
    assert_eq!(flashes(first).await, [format!("Welcome, {NAME}!")]);
    assert_eq!(heading(first).await, format!("Hello, {NAME}"));
    let remembered = session_cookie(first, "b. logged in, remembered")
        .await
        .expect("the log-in sets the session cookie");
    assert_attributes(&remembered);
    let ahead = expires_in(&remembered).expect("a remembered session's cookie has an expiry");
    assert!(
        (29 * DAY..=31 * DAY).contains(&ahead),
        "the cookie expires {ahead} s ahead, not about 30 days"
    );
    let (stored, kind) = this_session(first).await;
    assert!(
        (29 * DAY..=31 * DAY).contains(&stored),
        "the stored entry expires {stored} s ahead, not about 30 days"
    );
    assert_eq!(kind, "permanent (carries an expiry)");
    first.refresh().await.unwrap();
    assert_eq!(
        flashes(first).await,
        Vec::<String>::new(),
        "a flash message is shown once"
    );
    let reloaded = session_cookie(first, "b. reloaded").await.unwrap();
    assert_eq!(reloaded.value(), remembered.value());

    // c. Count twice: the counter is in the store, the id in the cookie stays.
    submit(first, COUNT).await;
    submit(first, COUNT).await;
    assert_eq!(text(first, COUNTER).await, "2");
    let counted = session_cookie(first, "c. counted twice").await.unwrap();
    assert_eq!(counted.value(), remembered.value(), "counting keeps the id");
    assert!(expires_in(&counted).is_some());

    // d. A second device logs in as the same user without "Remember me": a browser-session
    // cookie (no expiry) with an id of its own, a stored entry of about 2 hours; both
    // devices list both sessions, each marking its own.
    second.goto(base).await.unwrap();
    type_name(second).await;
    let remember = second.find(Locator::Css(REMEMBER_ME)).await.unwrap();
    assert!(
        !remember.is_selected().await.unwrap(),
        "Remember me starts unticked"
    );
    submit(second, LOG_IN).await;
    assert_eq!(flashes(second).await, [format!("Welcome, {NAME}!")]);
    let other = session_cookie(second, "d. second device logged in, not remembered")
        .await
        .expect("the log-in sets the session cookie");
    assert_attributes(&other);
    assert_eq!(
        expires_in(&other),
        None,
        "without Remember me, a browser-session cookie"
    );
    assert_ne!(
        other.value(),
        remembered.value(),
        "each device has its own id"
    );
    let (stored, kind) = this_session(second).await;
    assert!(
        (2 * HOUR - 300..=2 * HOUR + 60).contains(&stored),
        "the stored entry expires {stored} s ahead, not about 2 hours"
    );
    assert_eq!(kind, "browser session");
    let on_second = sessions(second, "d. second device").await;
    first.refresh().await.unwrap();
    let on_first = sessions(first, "d. first device reloaded").await;
    let mut marked = Vec::new();
    for listed in [&on_first, &on_second] {
        assert_eq!(listed.len(), 2, "{listed:?}");
        let own: Vec<&String> = listed
            .iter()
            .filter(|(_, this)| *this)
            .map(|(fingerprint, _)| fingerprint)
            .collect();
        assert_eq!(
            own.len(),
            1,
            "one session is marked as this one: {listed:?}"
        );
        marked.push(own[0]);
    }
    assert_ne!(marked[0], marked[1], "each device marks its own session");
    assert_eq!(text(first, COUNTER).await, "2");

    // e. The first device logs out: its id is gone (a new session carries the message),
    // and the second device lists one session.
    submit(first, LOG_OUT).await;
    assert_eq!(flashes(first).await, ["You are logged out."]);
    assert_eq!(heading(first).await, "Log in");
    assert!(
        first
            .find_all(Locator::Css("#sessions"))
            .await
            .unwrap()
            .is_empty()
    );
    if let Some(after) = session_cookie(first, "e. logged out").await {
        assert_ne!(after.value(), remembered.value(), "the old id is gone");
        assert_ne!(after.value(), other.value());
        assert_eq!(after.http_only(), Some(true));
    }
    second.refresh().await.unwrap();
    let on_second = sessions(second, "e. second device reloaded").await;
    assert_eq!(on_second.len(), 1, "{on_second:?}");
    assert!(on_second[0].1, "{on_second:?}");
    let kept = session_cookie(second, "e. second device reloaded")
        .await
        .unwrap();
    assert_eq!(kept.value(), other.value());

    // f. The logged-out id, put back into the jar, logs nobody in.
    let old_id = remembered.value().to_owned();
    first.add_cookie(remembered).await.unwrap();
    let put_back = session_cookie(first, "f. old cookie put back")
        .await
        .unwrap();
    assert_eq!(put_back.value(), old_id);
    first.refresh().await.unwrap();
    assert_eq!(
        heading(first).await,
        "Log in",
        "a logged-out id is worth nothing"
    );
}

/// `SATCHEL_TEST_WEBDRIVER`, or `None` after printing why it is missing (a panic under
/// `CI=true`).
fn webdriver() -> Option<String> {
    std::env::var("SATCHEL_TEST_WEBDRIVER")
        .ok()
        .filter(|url| !url.is_empty())
        .or_else(|| {
            satchel::testing::service_unavailable(
                "SATCHEL_TEST_WEBDRIVER",
                "unset (source scripts/services.sh)",
            )
        })
}

/// A new headless Chromium: a WebDriver session of its own, so a cookie jar of its own,
/// as on another device.
async fn open_browser(webdriver: &str) -> Result<Client, String> {
    let chromium = std::env::var("SATCHEL_TEST_CHROMIUM")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".to_owned());
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
            ],
        }),
    );
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    builder
        .connect(webdriver)
        .await
        .map_err(|error| format!("no browser from the WebDriver server at {webdriver}: {error}"))
}

/// Types [`NAME`] into the log-in form.
async fn type_name(browser: &Client) {
    browser
        .find(Locator::Css(NAME_FIELD))
        .await
        .unwrap()
        .send_keys(NAME)
        .await
        .unwrap();
}

/// Clicks the button `selector` finds, then waits until the page it leads to has loaded:
/// a click that submits a form may return before the browser has left the page, and a
/// look at the page meanwhile would see the old one. The old page is marked by a script
/// variable, which a new page does not have.
async fn submit(browser: &Client, selector: &str) {
    browser
        .execute("window.satchelOldPage = true;", Vec::new())
        .await
        .unwrap();
    browser
        .find(Locator::Css(selector))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = matches!(
            browser
                .execute(
                    "return document.readyState === 'complete' \
                     && window.satchelOldPage === undefined;",
                    Vec::new(),
                )
                .await,
            Ok(Value::Bool(true))
        );
        if loaded {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no new page within 10 s of clicking {selector}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the first element `selector` finds.
async fn text(browser: &Client, selector: &str) -> String {
    browser
        .find(Locator::Css(selector))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The page's first heading below the title: "Log in" or "Hello, NAME".
async fn heading(browser: &Client) -> String {
    text(browser, "h2").await
}

/// The flash messages on the page, in order.
async fn flashes(browser: &Client) -> Vec<String> {
    let mut messages = Vec::new();
    for flash in browser.find_all(Locator::Css("p.flash")).await.unwrap() {
        messages.push(flash.text().await.unwrap());
    }
    messages
}

/// The rows of the page's table of the user's sessions: each one's fingerprint, and
/// whether it is marked as this one. Printed under `step`.
async fn sessions(browser: &Client, step: &str) -> Vec<(String, bool)> {
    let mut listed = Vec::new();
    for row in browser
        .find_all(Locator::Css("#sessions tr"))
        .await
        .unwrap()
    {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        // The heading row has no `td`.
        let (Some(fingerprint), Some(mark)) = (cells.first(), cells.last()) else {
            continue;
        };
        let mark = mark.text().await.unwrap();
        listed.push((fingerprint.text().await.unwrap(), mark == "this one"));
    }
    eprintln!("   {step}: sessions listed {listed:?}");
    listed
}

/// The page's "Stored entry expires: DATE. Cookie: KIND." line: how many seconds ahead
/// the stored entry expires, and KIND.
async fn this_session(browser: &Client) -> (i64, String) {
    let line = browser
        .find(Locator::XPath(
            "//p[starts-with(normalize-space(.), 'Stored entry expires:')]",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (date, kind) = line
        .strip_prefix("Stored entry expires: ")
        .and_then(|rest| rest.split_once(". Cookie: "))
        .unwrap_or_else(|| panic!("not the expected line: {line:?}"));
    let at = httpdate::parse_http_date(date).unwrap_or_else(|error| panic!("{date:?}: {error}"));
    let at = i64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    (at - now(), kind.trim_end_matches('.').to_owned())
}

/// The browser's `session` cookie for the page it shows, after printing, under `step`,
/// every cookie it holds there with the attributes it stored.
async fn session_cookie(browser: &Client, step: &str) -> Option<Cookie<'static>> {
    let jar = browser.get_all_cookies().await.unwrap();
    if jar.is_empty() {
        eprintln!("   {step}: no cookie");
    }
    for cookie in &jar {
        eprintln!("   {step}: {}", describe(cookie));
    }
    jar.into_iter().find(|cookie| cookie.name() == "session")
}

/// A cookie as the browser holds it, with the start of its value only.
fn describe(cookie: &Cookie<'_>) -> String {
    let value = cookie.value();
    let expiry = match expires_in(cookie) {
        Some(ahead) => format!(
            "expires in {} d {} h ({ahead} s)",
            ahead / DAY,
            (ahead % DAY) / HOUR
        ),
        None => "no expiry (browser session)".to_owned(),
    };
    format!(
        "{}={}… ({} chars); {expiry}; HttpOnly={:?}; SameSite={:?}; Secure={:?}; Path={:?}; \
         Domain={:?}",
        cookie.name(),
        value.get(..8).unwrap_or(value),
        value.len(),
        cookie.http_only(),
        cookie.same_site(),
        cookie.secure(),
        cookie.path(),
        cookie.domain(),
    )
}

/// The attributes the demo's session cookie has, as the browser stored them: HttpOnly,
/// SameSite Lax (the demo sets no SameSite by default, and Chromium takes a cookie without
/// one as Lax), not Secure (the demo is plain HTTP on the loopback interface), path `/`.
fn assert_attributes(cookie: &Cookie<'_>) {
    let shown = describe(cookie);
    assert!(!cookie.value().is_empty(), "{shown}");
    assert_eq!(cookie.http_only(), Some(true), "{shown}");
    assert!(
        cookie.same_site().is_some_and(|same| same.is_lax()),
        "{shown}"
    );
    assert_eq!(cookie.secure(), Some(false), "{shown}");
    assert_eq!(cookie.path(), Some("/"), "{shown}");
}

/// How many seconds from now `cookie` expires, or `None` for a browser-session cookie.
fn expires_in(cookie: &Cookie<'_>) -> Option<i64> {
    cookie
        .expires_datetime()
        .map(|at| at.unix_timestamp() - now())
}

/// Now, in seconds since the Unix epoch.
fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `satchel serve` on a free loopback port, with the filesystem store in a directory of
/// its own; stopped when dropped.
struct Demo {
    child: Child,
    /// The demo page's URL.
    url: String,
    /// Where the server's stderr goes: a file, not a pipe that nobody reads.
    log: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start(framework: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_satchel"));
        // The walk expects the demo's defaults: no setting of the test's own environment
        // reaches the server.
        for (key, _) in std::env::vars() {
            if key.starts_with("SESSION_")
                || key.starts_with("SECRET_KEY")
                || key == "PERMANENT_SESSION_LIFETIME"
            {
                command.env_remove(key);
            }
        }
        let child = command
            .args([
                "serve",
                "--framework",
                framework,
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(dir.path())
            .env("SESSION_TYPE", "filesystem")
            .env("SESSION_FILE_DIR", dir.path().join("sessions"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let demo = Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "satchel serve did not start:\n{}",
                demo.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        demo
    }

    /// What the server has logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
