//! The MongoDB store as a [`FlaskBackend`]: Flask-Session's documents,
//! `{id, val, expiration}`.
//!
//! ```text
//! {
//!   _id:        ObjectId("…"),                   the server's own
//!   id:         "session:<43-character id>",     SESSION_KEY_PREFIX + id
//!   val:        BinData(0, "…"),                 the session's Flask-Session value
//!   expiration: ISODate("…")                     the session's expiry
//! }
//! ```
//!
//! [`MongoStore::create_flask_indexes`] makes Flask-Session's TTL index on `expiration`
//! (`expiration_1`, `expireAfterSeconds: 0`) and a unique index on `id` (`id_1`), which
//! Flask-Session does not make: without it two processes creating one session at once
//! could both insert a document. Flask-Session's own writes (an upsert on `{id}`) work
//! with it.
//!
//! Every read checks `expiration` as well, since the server's TTL monitor runs about once
//! a minute. A write is one conditional update on `{id, val: <the value read>}`, an
//! upsert that only inserts when nothing was read, or a delete on `{id, val}`.

use std::time::SystemTime;

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::{IndexOptions, ReturnDocument};

use super::MongoStore;
use crate::error::StoreError;
use crate::flask::{Blob, FlaskBackend};

/// The name of Flask-Session's TTL index.
const TTL_INDEX: &str = "expiration_1";
/// The name of the unique index on `id`.
const ID_INDEX: &str = "id_1";

fn binary(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

/// The blob of a document; a decode error when it is not one of Flask-Session's.
fn blob_of(document: &Document) -> Result<Blob, StoreError> {
    let value = match document.get("val") {
        Some(Bson::Binary(binary)) => binary.bytes.clone(),
        _ => {
            return Err(StoreError::decode(
                "a Flask session document without a binary `val`",
            ));
        }
    };
    let expires_at = match document.get("expiration") {
        Some(Bson::DateTime(at)) => Some(at.to_system_time()),
        _ => None,
    };
    Ok(Blob::new(value, expires_at))
}

impl MongoStore {
    /// Creates the indexes of Flask-Session's layout (see the [`flask`](crate::flask)
    /// layout) when they are missing: Flask-Session's TTL index on `expiration` and a
    /// unique index on `id`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server cannot be reached, or refuses (an index of
    /// the same name with other options, or documents that already share an `id`).
    pub async fn create_flask_indexes(&self) -> Result<(), StoreError> {
        let ttl = IndexModel::builder()
            .keys(doc! { "expiration": 1 })
            .options(
                IndexOptions::builder()
                    .name(TTL_INDEX.to_owned())
                    .expire_after(std::time::Duration::ZERO)
                    .build(),
            )
            .build();
        let id = IndexModel::builder()
            .keys(doc! { "id": 1 })
            .options(
                IndexOptions::builder()
                    .name(ID_INDEX.to_owned())
                    .unique(true)
                    .build(),
            )
            .build();
        self.timed(self.collection().create_index(ttl)).await?;
        self.timed(self.collection().create_index(id)).await?;
        Ok(())
    }
}

impl FlaskBackend for MongoStore {
    async fn blob(&self, key: &str, touch: Option<SystemTime>) -> Result<Option<Blob>, StoreError> {
        let found = match touch {
            None => {
                self.timed(self.collection().find_one(doc! { "id": key }))
                    .await?
            }
            Some(at) => {
                let now = DateTime::from_system_time(SystemTime::now());
                let filter = doc! {
                    "id": key,
                    "$or": [{ "expiration": { "$gt": now } }, { "expiration": null }],
                };
                let update = doc! { "$set": { "expiration": DateTime::from_system_time(at) } };
                self.timed(
                    self.collection()
                        .find_one_and_update(filter, update)
                        .return_document(ReturnDocument::After),
                )
                .await?
            }
        };
        found.as_ref().map(blob_of).transpose()
    }

    async fn put_blob(
        &self,
        key: &str,
        current: Option<&Blob>,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let fields = doc! {
            "val": binary(value),
            "expiration": DateTime::from_system_time(expires_at),
        };
        match current {
            Some(current) => {
                let filter = doc! { "id": key, "val": binary(&current.value) };
                let done = self
                    .timed(
                        self.collection()
                            .update_one(filter, doc! { "$set": fields }),
                    )
                    .await?;
                Ok(done.matched_count == 1)
            }
            None => {
                let upsert = self
                    .collection()
                    .update_one(doc! { "id": key }, doc! { "$setOnInsert": fields })
                    .upsert(true);
                match within_mongo(self, upsert).await {
                    Ok(done) => Ok(done.upserted_id.is_some()),
                    Err(Lost) => Ok(false),
                    Err(Failed(error)) => Err(error),
                }
            }
        }
    }

    async fn remove_blob(&self, key: &str, current: &Blob) -> Result<bool, StoreError> {
        let filter = doc! { "id": key, "val": binary(&current.value) };
        let done = self.timed(self.collection().delete_one(filter)).await?;
        Ok(done.deleted_count == 1)
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        self.timed(self.collection().delete_many(doc! { "id": key }))
            .await?;
        Ok(())
    }

    fn blob_prefix(&self) -> &str {
        self.key_prefix()
    }

    fn backend_name(&self) -> &'static str {
        "mongodb"
    }
}

/// How an insert ended when it did not insert.
enum Outcome {
    /// Another writer inserted the document first (a duplicate key).
    Lost,
    /// The server failed.
    Failed(StoreError),
}
use Outcome::{Failed, Lost};

/// Runs an upsert under the store's timeout, telling a lost race from a failure.
async fn within_mongo(
    store: &MongoStore,
    upsert: mongodb::action::Update<'_>,
) -> Result<mongodb::results::UpdateResult, Outcome> {
    let result = crate::support::within("MongoDB", store.timeout(), async {
        Ok::<_, StoreError>(upsert.await)
    })
    .await
    .map_err(Failed)?;
    match result {
        Ok(done) => Ok(done),
        Err(error) if super::is_duplicate_key(&error) => Err(Lost),
        Err(error) => Err(Failed(StoreError::backend(error))),
    }
}
