//! Micro-benchmarks of the per-request hot path: ids, signatures, record encoding, and the
//! engine's own cost per request on the memory store.
//!
//! ```sh
//! cargo bench -p satchel --features signed --bench hot_path
//! ```

#![allow(clippy::semicolon_if_nothing_returned, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use satchel::signing::{Key, Signer};
use satchel::{MemoryStore, SessionConfig, SessionId, SessionManager};
use serde_json::json;
use std::hint::black_box;

/// A session of about 1 KiB: the benchmark contract's login plus some application state.
fn one_kib() -> satchel::Data {
    let mut data = satchel::Data::new();
    data.insert("user_id".into(), json!(123_456));
    data.insert("name".into(), json!("user-000000000123456"));
    data.insert("roles".into(), json!(["reader", "writer", "viewer"]));
    data.insert("csrf".into(), json!("0123456789abcdef0123456789abcdef"));
    data.insert("n".into(), json!(42));
    for i in 0..14 {
        data.insert(
            format!("pref_{i}"),
            json!({"on": true, "value": "x".repeat(40), "n": i}),
        );
    }
    data
}

fn ids(c: &mut Criterion) {
    let id = SessionId::generate();
    let text = id.to_string();
    c.bench_function("id/generate", |b| b.iter(SessionId::generate));
    c.bench_function("id/format", |b| b.iter(|| black_box(&id).to_string()));
    c.bench_function("id/parse", |b| {
        b.iter(|| black_box(text.as_str()).parse::<SessionId>())
    });
}

fn signatures(c: &mut Criterion) {
    let signer = Signer::new(Key::derive(b"benchmark key"), [Key::derive(b"old key")]);
    let id = SessionId::generate();
    let value = signer.sign("session", &id);
    let old = Signer::new(Key::derive(b"old key"), []).sign("session", &id);
    c.bench_function("sign", |b| {
        b.iter(|| signer.sign("session", black_box(&id)))
    });
    c.bench_function("verify/current", |b| {
        b.iter(|| signer.verify("session", black_box(&value)))
    });
    c.bench_function("verify/fallback", |b| {
        b.iter(|| signer.verify("session", black_box(&old)))
    });
    c.bench_function("verify/forged", |b| {
        let forged = format!("{}A", &value[..value.len() - 1]);
        b.iter(|| signer.verify("session", black_box(&forged)))
    });
}

fn encoding(c: &mut Criterion) {
    let data = one_kib();
    let json = serde_json::to_vec(&data).expect("encodes");
    let msgpack = rmp_serde::to_vec_named(&data).expect("encodes");
    assert!((900..1400).contains(&json.len()), "{} bytes", json.len());
    c.bench_function("encode/json-1KiB", |b| {
        b.iter(|| serde_json::to_vec(black_box(&data)))
    });
    c.bench_function("decode/json-1KiB", |b| {
        b.iter(|| serde_json::from_slice::<satchel::Data>(black_box(&json)))
    });
    c.bench_function("encode/msgpack-1KiB", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&data)))
    });
    c.bench_function("decode/msgpack-1KiB", |b| {
        b.iter(|| rmp_serde::from_slice::<satchel::Data>(black_box(&msgpack)))
    });
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())
        .expect("a valid configuration");
    let cookie = runtime.block_on(async {
        let session = manager.session(None::<&str>);
        for (key, value) in one_kib() {
            session.insert(&key, value).await.expect("inserted");
        }
        let outcome = session.finish(200).await.expect("saved");
        outcome
            .set_cookie()
            .expect("a cookie")
            .split(';')
            .next()
            .expect("a pair")
            .to_owned()
    });
    let header = format!("theme=dark; {cookie}; lang=en");

    c.bench_function("engine/untouched", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let session = manager.session([header.as_str()]);
                session.finish(200).await
            })
        })
    });
    c.bench_function("engine/read", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let session = manager.session([header.as_str()]);
                let uid: Option<i64> = session.get("user_id").await.expect("loads");
                black_box(uid);
                session.finish(200).await
            })
        })
    });
    c.bench_function("engine/write", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let session = manager.session([header.as_str()]);
                let n: i64 = session.get("n").await.expect("loads").unwrap_or(0);
                session.insert("n", n + 1).await.expect("inserted");
                session.finish(200).await
            })
        })
    });
}

criterion_group!(benches, ids, signatures, encoding, engine);
criterion_main!(benches);
