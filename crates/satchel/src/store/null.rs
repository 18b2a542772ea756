//! The `null` store: sessions disabled.

use std::time::SystemTime;

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, Saved, SessionStore};

/// The seed's default store (SESSION_TYPE=`null`): sessions are disabled.
///
/// Every session reads as empty. Modifying one fails with
/// [`Error::Disabled`](crate::Error::Disabled), whose message names the key that enables
/// sessions. It is the default so that nothing is stored anywhere until an application
/// chooses where.
///
/// # Examples
///
/// ```
/// use satchel::{NullStore, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// assert!(NullStore.load(&SessionId::generate(), None).await.unwrap().is_none());
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullStore;

impl SessionStore for NullStore {
    async fn load(
        &self,
        _id: &SessionId,
        _touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        Ok(None)
    }

    async fn save(
        &self,
        _id: &SessionId,
        _changes: &Changes,
        _expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        Err(StoreError::Disabled)
    }

    async fn update(
        &self,
        _id: &SessionId,
        _key: &str,
        _update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        Err(StoreError::Disabled)
    }

    async fn delete(&self, _id: &SessionId) -> Result<(), StoreError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "null"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: false,
            persistent: false,
            shared: false,
            listable: false,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}
