//! Flask-Session's signed cookie, checked both ways against itsdangerous itself (the
//! library Flask-Session signs with), run by the machine's Python: values itsdangerous
//! signs verify in Satchel, and values Satchel signs unsign in itsdangerous.

#![cfg(feature = "flask")]
#![allow(clippy::unwrap_used)]

use std::process::Command;

use satchel::SessionId;
use satchel::flask::FlaskSigner;

/// The Python program: for each `secret<TAB>sid` line of its input, the value
/// Flask-Session's signer makes, then whether it unsigns the value given as the third
/// column.
const PYTHON: &str = r#"
import sys
from itsdangerous import Signer, BadSignature
for line in sys.stdin.read().splitlines():
    secret, sid, theirs = line.split("\t")
    signer = Signer(secret, salt="flask-session", key_derivation="hmac")
    made = signer.sign(sid).decode()
    try:
        ok = signer.unsign(theirs).decode() == sid
    except BadSignature:
        ok = False
    print(made, ok)
"#;

/// itsdangerous, run by `python3`; `None` (a skip, a failure under `CI=true`) when it is
/// not installed.
fn python() -> Option<&'static str> {
    let found = Command::new("python3")
        .args(["-c", "import itsdangerous"])
        .status()
        .is_ok_and(|status| status.success());
    if found {
        Some("python3")
    } else {
        satchel::testing::service_unavailable(
            "itsdangerous",
            "python3 cannot import itsdangerous (source scripts/services.sh installs it)",
        )
    }
}

#[test]
fn flask_sessions_signer_and_satchels_agree_both_ways() {
    let Some(python) = python() else {
        return;
    };
    let secrets = [
        "test-secret",
        "a long and random application secret, as `satchel keygen` makes",
        "clé non ASCII ✓",
    ];
    let mut cases = Vec::new();
    for secret in secrets {
        for _ in 0..20 {
            // Flask-Session 0.6+ ids are token_urlsafe(32), 43 characters as Satchel's;
            // Flask Unchained's are UUID strings.
            cases.push((secret, SessionId::generate().to_string()));
        }
        cases.push((secret, "85775d02-cd39-49c8-8042-66e54682f514".to_owned()));
    }
    let mut input = String::new();
    for (secret, sid) in &cases {
        let ours = FlaskSigner::new(secret.as_bytes(), []).sign(sid);
        input.push_str(&format!("{secret}\t{sid}\t{ours}\n"));
    }
    let output = {
        use std::io::Write as _;
        let mut child = Command::new(python)
            .args(["-c", PYTHON])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "python failed");
        String::from_utf8(output.stdout).unwrap()
    };
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((secret, sid), line) in cases.iter().zip(lines) {
        let (theirs, unsigned) = line.split_once(' ').unwrap();
        let signer = FlaskSigner::new(secret.as_bytes(), []);
        assert_eq!(signer.verify(theirs), Some((sid.as_str(), false)), "{line}");
        assert_eq!(signer.sign(sid), theirs, "made alike");
        assert_eq!(
            unsigned, "True",
            "itsdangerous unsigns Satchel's value for {sid}"
        );
    }
    eprintln!(
        "{} ids under {} keys: signed alike, verified both ways",
        cases.len(),
        secrets.len()
    );
}
