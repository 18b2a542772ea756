//! Flask-Session's formats, checked both ways against the Python libraries Flask-Session
//! uses, run by the machine's Python: its signed cookie against itsdangerous (values it
//! signs verify in Satchel, and values Satchel signs unsign in it), its stored value
//! against msgspec (what it encodes Satchel reads, and what Satchel writes it reads), and
//! the pickled value of Flask-Session 0.6 and Flask Unchained against Python's pickle
//! (what it pickles with protocols 0, 2, 4 and 5 Satchel reads, and what Satchel writes
//! it unpickles to the same values, of the same types).

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

/// `python3` when it can import `module`; `None` (a skip, a failure under `CI=true`)
/// when it cannot.
fn python(module: &str) -> Option<&'static str> {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|status| status.success());
    if found {
        Some("python3")
    } else {
        satchel::testing::service_unavailable(
            module,
            &format!("python3 cannot import {module} (source scripts/services.sh installs it)"),
        )
    }
}

/// Runs `program` with `args`, `input` on its standard input; its standard output.
fn run(python: &str, program: &str, args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(python)
        .args(["-c", program])
        .args(args)
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
}

#[test]
fn flask_sessions_signer_and_satchels_agree_both_ways() {
    let Some(python) = python("itsdangerous") else {
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
    let output = run(python, PYTHON, &[], &input);
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

/// The Python side of the msgpack check: `make` prints msgspec's encoding of a session
/// with every kind of value; `check` reads Satchel's encoding and says whether it holds
/// that session plus the keys Satchel added.
const MSGSPEC: &str = r#"
import sys, datetime, msgspec
def session():
    return {
        "_permanent": True, "i": 42, "s": "héllo", "f": 1.5, "none": None,
        "nested": {"a": [1, 2, {"b": None}], "t": True},
        "tup": (1, 2), "b": b"\x00\xffbin", "big": 2**40, "neg": -5, "u64": 2**64 - 1,
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc),
        "intkeys": {1: "x"}, "_flashes": [("info", "hi there")],
    }
if sys.argv[1] == "make":
    print(msgspec.msgpack.encode(session()).hex())
else:
    got = msgspec.msgpack.decode(bytes.fromhex(sys.stdin.read().strip()))
    want = msgspec.msgpack.decode(msgspec.msgpack.encode(session()))
    want["added"] = "from satchel"
    want["raw"] = b"\x01\x02"
    print(got == want)
    if got != want:
        print(repr(got))
        print(repr(want))
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

#[test]
fn flask_sessions_values_and_satchels_cross_both_ways() {
    use satchel::flask::msgpack;
    use serde_json::json;

    let Some(python) = python("msgspec") else {
        return;
    };
    let made = run(python, MSGSPEC, &["make"], "");
    let (mut data, permanent) = msgpack::decode(&unhex(made.trim())).unwrap();
    assert_eq!(permanent, Some(true));
    assert_eq!(data["s"], json!("héllo"));
    assert_eq!(data["u64"], json!(u64::MAX));
    assert_eq!(data["tup"], json!([1, 2]));
    assert_eq!(data["b"], json!({"$bytes": "AP9iaW4="}));
    assert_eq!(data["_flashes"], json!([["info", "hi there"]]));
    assert!(data["dt"].get(msgpack::RAW).is_some(), "{}", data["dt"]);
    assert!(
        data["intkeys"].get(msgpack::RAW).is_some(),
        "{}",
        data["intkeys"]
    );

    data.insert("added".to_owned(), json!("from satchel"));
    data.insert("raw".to_owned(), json!({"$bytes": "AQI="}));
    let written = msgpack::encode(&data, permanent).unwrap();
    let verdict = run(python, MSGSPEC, &["check"], &hex(&written));
    assert_eq!(verdict.lines().next(), Some("True"), "{verdict}");
    eprintln!(
        "msgspec's session ({} bytes) read by Satchel, and Satchel's ({} bytes) read by msgspec: equal",
        made.trim().len() / 2,
        written.len()
    );
}

/// The Python side of the pickle check: `make` prints, for protocols 0, 2, 4 and 5, the
/// protocol and the pickle of a session with every kind of value; `check` unpickles each
/// line of its input and says whether it is that session plus the keys Satchel added,
/// every value of the same type as in the session, all the way down.
const PICKLES: &str = r#"
import sys, pickle, datetime, decimal
def session():
    shared = [1, [2]]
    return {
        "_permanent": True, "i": 42, "s": "héllo \\ \n", "f": 1.5, "none": None,
        "nested": {"a": [1, 2, {"b": None}], "t": True}, "b": b"\x00\xffbin",
        "big": 2**40, "neg": -5, "u64": 2**64 - 1, "huge": 2**100, "inf": float("inf"),
        "tup": (1, 2), "set": {1, 2, 3}, "frozen": frozenset({"a"}),
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc),
        "naive": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "tz": datetime.timezone(datetime.timedelta(hours=2)),
        "dec": decimal.Decimal("1.10"), "intkeys": {1: "x", (2, 3): [4]},
        "_flashes": [("info", "hi there")], "a": shared, "b2": shared,
    }
def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
if sys.argv[1] == "make":
    for protocol in (0, 2, 4, 5):
        print(protocol, pickle.dumps(session(), protocol).hex())
else:
    want = session()
    want["added"] = "from satchel"
    want["raw"] = b"\x01\x02"
    for line in sys.stdin.read().split():
        got = pickle.loads(bytes.fromhex(line))
        print(same(got, want))
        if not same(got, want):
            print(repr(got))
            print(repr(want))
"#;

#[test]
fn flask_sessions_pickles_and_satchels_cross_both_ways() {
    use satchel::flask::pickle;
    use serde_json::json;

    let Some(python) = python("pickle") else {
        return;
    };
    let made = run(python, PICKLES, &["make"], "");
    let mut written = String::new();
    let mut sessions = 0;
    for line in made.lines() {
        let (protocol, value) = line.split_once(' ').unwrap();
        let (mut data, permanent) = pickle::decode(&unhex(value)).unwrap();
        assert_eq!(permanent, Some(true), "protocol {protocol}");
        assert_eq!(data["s"], json!("héllo \\ \n"), "protocol {protocol}");
        assert_eq!(data["f"], json!(1.5));
        assert_eq!(data["none"], json!(null));
        assert_eq!(data["nested"], json!({"a": [1, 2, {"b": null}], "t": true}));
        assert_eq!(data["big"], json!(1_u64 << 40));
        assert_eq!(data["neg"], json!(-5));
        assert_eq!(data["u64"], json!(u64::MAX));
        // A list fetched from the memo twice reads twice.
        assert_eq!(data["a"], json!([1, [2]]));
        assert_eq!(data["b2"], json!([1, [2]]));
        // `bytes` from protocol 3 on; before, Python pickles a call of `_codecs.encode`.
        if protocol == "0" || protocol == "2" {
            assert!(data["b"].get(pickle::RAW).is_some(), "{}", data["b"]);
        } else {
            assert_eq!(data["b"], json!({"$bytes": "AP9iaW4="}));
        }
        for kept in [
            "huge", "inf", "tup", "set", "frozen", "dt", "naive", "tz", "dec", "intkeys",
        ] {
            assert!(
                data[kept].get(pickle::RAW).is_some(),
                "protocol {protocol}: {kept} = {}",
                data[kept]
            );
        }
        assert!(
            data["_flashes"][0].get(pickle::RAW).is_some(),
            "{}",
            data["_flashes"]
        );

        data.insert("added".to_owned(), json!("from satchel"));
        data.insert("raw".to_owned(), json!({"$bytes": "AQI="}));
        let bytes = pickle::encode(&data, permanent).unwrap();
        assert_eq!(pickle::decode(&bytes).unwrap(), (data, permanent));
        written.push_str(&hex(&bytes));
        written.push('\n');
        sessions += 1;
    }
    assert_eq!(sessions, 4, "{made}");
    let verdict = run(python, PICKLES, &["check"], &written);
    assert_eq!(
        verdict.lines().filter(|line| *line == "True").count(),
        4,
        "{verdict}"
    );
    eprintln!(
        "Python's pickles of protocols 0, 2, 4 and 5 read by Satchel, and Satchel's \
         unpickled by Python: equal, of the same types"
    );
}
