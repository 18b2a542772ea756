//! Flash messages: a message left for the next request that shows it once, as Flask's
//! `flash()` and `get_flashed_messages()`.

use serde_json::Value;

use super::Session;
use crate::error::Error;
use crate::record::KeyUpdate;

/// The session key of the flash messages: Flask's, so a Flask application sharing the
/// session sees the same messages. Its value is a list of `[category, message]` pairs.
pub const FLASHES_KEY: &str = "_flashes";

/// The category of a message flashed without one, as in Flask.
pub const DEFAULT_CATEGORY: &str = "message";

/// How many times a flash or a take reads again when other requests keep changing the
/// messages between its read and its write. Each conflict means another request's
/// change landed, so among n concurrent flashes and takes of one session the last waits
/// n - 1 rounds: this bounds the concurrency they are sure to get through (fifty in the
/// scenario `concurrent_flashes_are_each_shown_once`), not the throughput.
const ATTEMPTS: usize = 64;

/// One flash message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Flash {
    /// Its category (`message`, `error`, `info`, … as the application chooses).
    pub category: String,
    /// The message.
    pub message: String,
}

impl Flash {
    /// The message stored as `item`: a `[category, message]` pair, or a lone string (a
    /// message of the default category); `None` for anything else.
    fn from_stored(item: &Value) -> Option<Self> {
        match item {
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(category), Value::String(message)] => Some(Self {
                    category: category.clone(),
                    message: message.clone(),
                }),
                _ => None,
            },
            Value::String(message) => Some(Self {
                category: DEFAULT_CATEGORY.to_owned(),
                message: message.clone(),
            }),
            _ => None,
        }
    }
}

impl Session {
    /// Leaves `message`, of `category`, for a later request of this session to show
    /// once ([`take_flashes`](Self::take_flashes)).
    ///
    /// The message is added to the stored list at once, by a compare-and-swap on the
    /// store's latest value (read, append, write only if unchanged, else again), so
    /// messages flashed by concurrent requests are all kept. In a session that is not
    /// stored yet, it is saved with the session when the request ends.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the session would be over its size budget;
    /// [`Error::Conflict`] when other requests changed the messages 64 times in a row;
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// session.flash("info", "Saved.").await?;
    /// let shown = session.take_flashes().await?;
    /// assert_eq!(shown.len(), 1);
    /// assert_eq!((shown[0].category.as_str(), shown[0].message.as_str()), ("info", "Saved."));
    /// assert!(session.take_flashes().await?.is_empty(), "shown once");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn flash(&self, category: &str, message: &str) -> Result<(), Error> {
        for _ in 0..ATTEMPTS {
            let current = self.get_value(FLASHES_KEY).await?;
            let mut list = match &current {
                Some(Value::Array(items)) => items.clone(),
                // Anything else is no list of messages: it is replaced.
                _ => Vec::new(),
            };
            list.push(Value::Array(vec![category.into(), message.into()]));
            let update = KeyUpdate::Replace {
                expected: current,
                new: Some(Value::Array(list)),
                max_size: self.budget(),
            };
            match self.update_key(FLASHES_KEY, update).await {
                Ok(_) => return Ok(()),
                Err(Error::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict {
            key: FLASHES_KEY.to_owned(),
        })
    }

    /// Takes every flash message left so far, oldest first, and removes exactly those:
    /// a message flashed meanwhile by another request is either taken too or left for
    /// the next take, and two concurrent takes never both get one message. Items of
    /// `_flashes` that are not messages are dropped with the rest.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when other requests changed the messages 64 times in a row;
    /// [`Error::Unavailable`] when the store failed.
    pub async fn take_flashes(&self) -> Result<Vec<Flash>, Error> {
        for _ in 0..ATTEMPTS {
            let Some(current) = self.get_value(FLASHES_KEY).await? else {
                return Ok(Vec::new());
            };
            let update = KeyUpdate::Replace {
                expected: Some(current.clone()),
                new: None,
                max_size: None,
            };
            match self.update_key(FLASHES_KEY, update).await {
                Ok(_) => {
                    let items = match &current {
                        Value::Array(items) => items.as_slice(),
                        _ => &[],
                    };
                    return Ok(items.iter().filter_map(Flash::from_stored).collect());
                }
                Err(Error::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict {
            key: FLASHES_KEY.to_owned(),
        })
    }
}
