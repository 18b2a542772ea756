//! A visit counter on axum, with settings from SESSION_* environment variables.
//!
//! ```sh
//! SESSION_TYPE=memory cargo run -p satchel --example axum --features axum
//! curl -c jar -b jar http://127.0.0.1:3000/   # visit number 1, 2, 3, ...
//! ```

#![allow(clippy::print_stdout)]

use axum::Router;
use axum::routing::get;
use satchel::{Session, SessionConfig, SessionLayer};

async fn visits(session: Session) -> Result<String, satchel::Error> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(format!("visit number {n}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = SessionLayer::from_config(SessionConfig::from_env()?).await?;
    let app = Router::new().route("/", get(visits)).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
