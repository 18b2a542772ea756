//! A visit counter on actix-web, with settings from SESSION_* environment variables.
//!
//! ```sh
//! SESSION_TYPE=memory cargo run -p satchel --example actix --features actix
//! curl -c jar -b jar http://127.0.0.1:3000/   # visit number 1, 2, 3, ...
//! ```

#![allow(clippy::print_stdout)]

use actix_web::{App, HttpServer, web};
use satchel::{Session, SessionConfig, SessionMiddleware};

async fn visits(session: Session) -> Result<String, satchel::Error> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(format!("visit number {n}\n"))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let middleware = SessionMiddleware::from_config(SessionConfig::from_env()?).await?;
    println!("listening on http://127.0.0.1:3000");
    HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .route("/", web::get().to(visits))
    })
    .bind(("127.0.0.1", 3000))?
    .run()
    .await?;
    Ok(())
}
