//! The shared HTTP scenarios through the actix-web middleware and extractor.

#![cfg(all(feature = "actix", feature = "signed"))]
#![allow(clippy::unwrap_used)]

mod scenarios;

use scenarios::actix_app::Actix;
use scenarios::{App, Harness};

/// Every scenario on the memory store.
mod memory {
    use super::*;
    scenarios!(Actix, async { Some(satchel::MemoryStore::default()) });
}

/// Every scenario on the filesystem store.
#[cfg(feature = "filesystem")]
mod filesystem {
    use super::*;
    scenarios!(Actix, async {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let config = satchel::SessionConfig::default().with_file_dir(dir);
        Some(satchel::FilesystemStore::from_config(&config).expect("the store opens"))
    });
}

/// The scenarios of the cookie store.
#[cfg(feature = "cookie")]
mod cookie_scenarios {
    use super::*;
    cookie_scenarios!(Actix);
}

#[tokio::test]
async fn the_extractor_fails_without_the_middleware() {
    use actix_web::{App as ActixApp, test, web};
    let app = test::init_service(ActixApp::new().route(
        "/",
        web::get().to(|_: satchel::Session| async { "unreachable" }),
    ))
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status().as_u16(), 500);
}

#[cfg(feature = "filesystem")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_policy_decides_the_answer() {
    scenarios::the_failure_policy_decides_the_answer(&Actix).await;
}

#[tokio::test]
async fn the_null_store_reads_empty_and_refuses_writes() {
    let app = App::new(satchel::NullStore, satchel::SessionConfig::default());
    let reply = Actix.request(&app, "GET", "/read", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    let reply = Actix.request(&app, "POST", "/set/k", None).await;
    assert_eq!(reply.status, 500);
    assert!(reply.body.is_empty());
    assert!(reply.set_cookie.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_budget_is_a_mappable_error() {
    scenarios::a_session_over_its_budget_is_a_mappable_error(&Actix).await;
}
