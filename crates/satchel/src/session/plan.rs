//! The end of a request as a pure decision, so that the engine's policy reads as a table.
//!
//! [`plan`] turns what the request did with its session (an [`Ending`]) and the settings
//! (a [`Policy`]) into the store work to do (a [`Plan`]); [`cookie`] turns the plan's
//! write and what the store answered into what happens to the browser's cookie. Neither
//! touches a store, a clock or a lock: `Session::finish` gathers the facts, runs the
//! plan and copies the cookie onto the response, and the tables below test the policy
//! without any store.

use std::time::{Duration, SystemTime};

use crate::id::SessionId;
use crate::store::Saved;

/// What the request decided for its session's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Fate {
    /// The id stays (the usual request).
    #[default]
    Keep,
    /// `cycle_id`: the entry moves to a new id.
    Cycle,
    /// `destroy`: the entry (if one was named) is deleted and the cookie goes, unless
    /// data inserted afterwards starts a new session.
    Destroy {
        /// The entry to delete: the id the request presented, if it verified.
        purge: Option<SessionId>,
    },
}

/// What the request did with its session, as the end of the request sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Ending {
    /// The response status.
    pub(super) status: u16,
    /// The handler used the session in any way.
    pub(super) touched: bool,
    /// The store failed during the request.
    pub(super) failed: bool,
    pub(super) fate: Fate,
    /// A live stored entry was loaded for the presented id (and the id still names it).
    pub(super) existed: bool,
    /// The change set is not empty once settled.
    pub(super) changed: bool,
    /// The change set sets keys (not only removals).
    pub(super) sets_keys: bool,
    /// The request's view of the data is not empty.
    pub(super) has_data: bool,
    /// A key was updated in the store at once (increment, compare-and-set).
    pub(super) updated: bool,
    /// The session is permanent (its cookie carries an expiry).
    pub(super) permanent: bool,
    /// The request changes the permanent flag or the session's lifetime.
    pub(super) flag_changed: bool,
    /// The cookie verified by a fallback key: re-sign it.
    pub(super) resign: bool,
    /// The loaded entry's expiry.
    pub(super) stored_expires: Option<SystemTime>,
    /// The loaded entry carries a store version (the save may skip a read).
    pub(super) has_version: bool,
    /// The request presented a session cookie at all.
    pub(super) presented: bool,
}

/// The settings the end of a request depends on, and the time it ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy {
    pub(super) now: SystemTime,
    /// The session's lifetime: its own, or `PERMANENT_SESSION_LIFETIME`.
    pub(super) lifetime: Duration,
    /// The end of the session's absolute lifetime (SESSION_ABSOLUTE_LIFETIME from its
    /// creation), which no expiry passes.
    pub(super) deadline: Option<SystemTime>,
    /// How far a stored expiry may lag before a refresh moves it.
    pub(super) granularity: Duration,
    /// `SESSION_REFRESH_EACH_REQUEST`.
    pub(super) refresh_each_request: bool,
}

/// The store work at the end of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// The handler never used the session: nothing, not even `Vary: Cookie`.
    Untouched,
    /// The store failed during the request: the response becomes the failure policy's
    /// empty answer.
    Failed,
    /// A 5xx response: nothing is saved; `Vary: Cookie` only.
    VaryOnly,
    /// Delete the destroyed entry (when `delete`), then `write`.
    Act { delete: bool, write: Write },
}

/// The one write of a request (after its delete, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Nothing to write; the cookie may still be re-signed or removed.
    Nothing,
    /// Move the entry to a new id, applying the change set, with this expiry.
    Cycle { expires_at: SystemTime },
    /// Apply the change set onto the entry under the same id. `seen`: the loaded
    /// version may be used to skip the store's read. `resend`: the browser's cookie must
    /// change (a due expiry, the permanent flag, a new signature).
    Save {
        expires_at: SystemTime,
        seen: bool,
        resend: bool,
    },
    /// Move the stored expiry only (a due refresh): the request's one write.
    Touch { expires_at: SystemTime },
    /// Store the data as a new session under a new id. `check_retired`: refuse when the
    /// request presented an id this process rotated away from or destroyed.
    Create {
        expires_at: SystemTime,
        check_retired: bool,
    },
}

/// What the store answered to the plan's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// No write was made.
    Nothing,
    /// The answer of a save, cycle or create.
    Saved(Saved),
    /// The touch moved the expiry to this time.
    Touched(SystemTime),
    /// The touch found no live entry: destroyed or expired meanwhile.
    Gone,
    /// The touch failed; the entry keeps its expiry (logged where it failed).
    TouchFailed,
}

/// What happens to the browser's cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cookie {
    /// No `Set-Cookie`.
    Leave,
    /// The same id again, with this expiry (`None`: a browser-session cookie).
    Same(Option<SystemTime>),
    /// The new id the write stored, with this expiry.
    New(Option<SystemTime>),
    /// Remove the cookie.
    Remove,
}

/// The request's keys could not be kept: its session was destroyed, rotated or expired
/// while it ran (answered `409`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Superseded;

/// The store work for a request that ended as `ending` says; `policy` is asked for only
/// when there is store work to plan.
pub(super) fn plan(ending: &Ending, policy: impl FnOnce() -> Policy) -> Plan {
    if !ending.touched {
        return Plan::Untouched;
    }
    if ending.failed {
        return Plan::Failed;
    }
    if ending.status >= 500 {
        return Plan::VaryOnly;
    }
    let policy = &policy();
    let delete = matches!(ending.fate, Fate::Destroy { purge: Some(_) });
    let full = policy
        .now
        .checked_add(policy.lifetime)
        .unwrap_or(policy.now);
    let expires_at = policy.deadline.map_or(full, |deadline| full.min(deadline));
    let write = if ending.existed {
        match ending.fate {
            Fate::Cycle => Write::Cycle { expires_at },
            _ if ending.changed => save(ending, policy, expires_at),
            _ => refresh(ending, policy, expires_at),
        }
    } else if ending.has_data {
        // A request that destroyed its own session may start a new one, and so may a
        // log-in (it replaces the cookie, as the browser wants).
        Write::Create {
            expires_at,
            check_retired: ending.fate == Fate::Keep,
        }
    } else {
        Write::Nothing
    };
    Plan::Act { delete, write }
}

/// Whether the stored expiry lags a full lifetime from now by more than the granularity.
fn lagging(ending: &Ending, policy: &Policy, expires_at: SystemTime) -> bool {
    let due = expires_at
        .checked_sub(policy.granularity)
        .unwrap_or(expires_at);
    ending.stored_expires.is_none_or(|at| at < due)
}

/// A save that keeps the id.
fn save(ending: &Ending, policy: &Policy, expires_at: SystemTime) -> Write {
    // The cookie is re-sent only when the browser's copy must change. Otherwise the
    // cookie it holds already names this id and expires with the entry, and a late
    // answer re-sending it could land after a concurrent log-in or log-out had replaced
    // it, bringing back a dead id.
    let resend = ending.resign
        || ending.flag_changed
        || (ending.permanent && lagging(ending, policy, expires_at));
    // A permanent session's stored expiry moves only when its cookie is re-sent, so the
    // two keep expiring together; a browser-session cookie carries no expiry, so its
    // entry's moves freely.
    let expires_at = match ending.stored_expires {
        // Never past the deadline, which may have been lowered since it was stored.
        Some(at) if ending.permanent && !resend => policy.deadline.map_or(at, |end| at.min(end)),
        _ => expires_at,
    };
    // The version shortcut writes what this request saw; once the loaded entry's expiry
    // has passed, the store must decide from what it holds (an expired entry takes no
    // changes), so the shortcut is not taken.
    let seen = ending.has_version && ending.stored_expires.is_some_and(|at| at > policy.now);
    Write::Save {
        expires_at,
        seen,
        resend,
    }
}

/// A request that changed nothing: a touch when a refresh is due, else nothing.
fn refresh(ending: &Ending, policy: &Policy, expires_at: SystemTime) -> Write {
    // A key updated at once is a change: the expiry follows it as it follows a save
    // (once it lags), whatever SESSION_REFRESH_EACH_REQUEST says.
    let refresh = (ending.permanent && policy.refresh_each_request) || ending.updated;
    if refresh && ending.stored_expires.is_some() && lagging(ending, policy, expires_at) {
        Write::Touch { expires_at }
    } else {
        Write::Nothing
    }
}

/// What happens to the cookie once `write` got `answer`.
pub(super) fn cookie(ending: &Ending, write: &Write, answer: Answer) -> Result<Cookie, Superseded> {
    let expiry = |at: SystemTime| ending.permanent.then_some(at);
    Ok(match (*write, answer) {
        (
            Write::Save {
                expires_at, resend, ..
            },
            Answer::Saved(Saved::Stored),
        ) => {
            if resend {
                Cookie::Same(expiry(expires_at))
            } else {
                Cookie::Leave
            }
        }
        (
            Write::Cycle { expires_at } | Write::Create { expires_at, .. },
            Answer::Saved(Saved::Stored),
        ) => Cookie::New(expiry(expires_at)),
        (_, Answer::Saved(Saved::Empty)) if ending.existed && ending.has_data => {
            // The request's view still held data: the entry was destroyed, rotated or
            // expired while it ran, or (with only removals) another request's removals
            // emptied it first. The cookie is left to whoever replaced it. Keys it set
            // were not kept, and the request must not answer as if they were; removals
            // hold either way.
            if ending.sets_keys {
                return Err(Superseded);
            }
            Cookie::Leave
        }
        (_, Answer::Saved(Saved::Empty)) if ending.presented => Cookie::Remove,
        (_, Answer::Saved(Saved::Empty)) => Cookie::Leave,
        // The browser's cookie already expires when the stored entry does (both were set
        // by the same save or touch): it goes out again only when a touch moved the
        // expiry of a permanent session, or the value must be re-signed.
        (Write::Touch { .. }, Answer::Touched(moved)) if ending.permanent => {
            Cookie::Same(Some(moved))
        }
        // Destroyed or expired meanwhile: the cookie is left alone.
        (Write::Touch { .. }, Answer::Gone) => Cookie::Leave,
        (Write::Touch { .. } | Write::Nothing, _) if ending.resign && ending.existed => {
            Cookie::Same(ending.stored_expires.filter(|_| ending.permanent))
        }
        (Write::Nothing, _) if ending.presented && matches!(ending.fate, Fate::Destroy { .. }) => {
            Cookie::Remove
        }
        _ => Cookie::Leave,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn policy() -> Policy {
        Policy {
            now: SystemTime::UNIX_EPOCH + 1000 * DAY,
            lifetime: 31 * DAY,
            deadline: None,
            granularity: 31 * DAY / 100,
            refresh_each_request: true,
        }
    }

    /// A full lifetime from now.
    fn full() -> SystemTime {
        policy().now + policy().lifetime
    }

    /// A stored permanent session loaded with `expires` and nothing else done to it.
    fn loaded(expires: SystemTime) -> Ending {
        Ending {
            status: 200,
            touched: true,
            existed: true,
            has_data: true,
            permanent: true,
            stored_expires: Some(expires),
            has_version: true,
            presented: true,
            ..Ending::default()
        }
    }

    /// A request that loaded a fresh entry (expiry not lagging) and set a key.
    fn changed() -> Ending {
        Ending {
            changed: true,
            sets_keys: true,
            ..loaded(full() - HOUR)
        }
    }

    fn act(ending: &Ending) -> Write {
        match plan(ending, policy) {
            Plan::Act { write, .. } => write,
            other => panic!("expected store work, got {other:?}"),
        }
    }

    #[test]
    fn what_comes_before_any_store_work() {
        let cases = [
            (Ending::default(), Plan::Untouched),
            (
                Ending {
                    failed: true,
                    ..changed()
                },
                Plan::Failed,
            ),
            (
                Ending {
                    status: 503,
                    ..changed()
                },
                Plan::VaryOnly,
            ),
            (
                Ending {
                    status: 500,
                    fate: Fate::Destroy { purge: None },
                    ..changed()
                },
                Plan::VaryOnly,
            ),
        ];
        for (ending, expected) in cases {
            assert_eq!(plan(&ending, policy), expected, "{ending:?}");
        }
    }

    /// The write of each kind of request, as a table: (what the request did, its write).
    #[test]
    fn the_write_of_each_kind_of_request() {
        let now = policy().now;
        let fresh = full() - HOUR;
        let lagging = now + DAY;
        let expired = now - HOUR;
        let cases: Vec<(&str, Ending, Write)> = vec![
            (
                "a change on a fresh permanent session keeps its expiry and cookie",
                changed(),
                Write::Save {
                    expires_at: fresh,
                    seen: true,
                    resend: false,
                },
            ),
            (
                "a change on a lagging permanent session moves both",
                Ending {
                    stored_expires: Some(lagging),
                    ..changed()
                },
                Write::Save {
                    expires_at: full(),
                    seen: true,
                    resend: true,
                },
            ),
            (
                "a change on a browser session moves its entry's expiry, sends no cookie",
                Ending {
                    permanent: false,
                    ..changed()
                },
                Write::Save {
                    expires_at: full(),
                    seen: true,
                    resend: false,
                },
            ),
            (
                "a change of the permanent flag re-sends the cookie",
                Ending {
                    flag_changed: true,
                    ..changed()
                },
                Write::Save {
                    expires_at: full(),
                    seen: true,
                    resend: true,
                },
            ),
            (
                "a cookie verified by a fallback key is re-signed with the change",
                Ending {
                    resign: true,
                    ..changed()
                },
                Write::Save {
                    expires_at: full(),
                    seen: true,
                    resend: true,
                },
            ),
            (
                "an entry loaded as live but expired since takes no version shortcut",
                Ending {
                    stored_expires: Some(expired),
                    ..changed()
                },
                Write::Save {
                    expires_at: full(),
                    seen: false,
                    resend: true,
                },
            ),
            (
                "a store without versions saves by reading",
                Ending {
                    has_version: false,
                    ..changed()
                },
                Write::Save {
                    expires_at: fresh,
                    seen: false,
                    resend: false,
                },
            ),
            (
                "a read of a fresh session writes nothing",
                loaded(fresh),
                Write::Nothing,
            ),
            (
                "a read of a lagging permanent session touches it",
                loaded(lagging),
                Write::Touch { expires_at: full() },
            ),
            (
                "a read of a lagging browser session writes nothing: its cookie has no expiry",
                Ending {
                    permanent: false,
                    ..loaded(lagging)
                },
                Write::Nothing,
            ),
            (
                "a key updated at once moves a lagging browser session's expiry",
                Ending {
                    permanent: false,
                    updated: true,
                    ..loaded(lagging)
                },
                Write::Touch { expires_at: full() },
            ),
            (
                "a log-in moves the entry to a new id",
                Ending {
                    fate: Fate::Cycle,
                    ..loaded(fresh)
                },
                Write::Cycle { expires_at: full() },
            ),
            (
                "a log-in with changes moves them too",
                Ending {
                    fate: Fate::Cycle,
                    ..changed()
                },
                Write::Cycle { expires_at: full() },
            ),
            (
                "a new session with data is created, unless a retired id came back",
                Ending {
                    existed: false,
                    stored_expires: None,
                    changed: true,
                    ..loaded(fresh)
                },
                Write::Create {
                    expires_at: full(),
                    check_retired: true,
                },
            ),
            (
                "a log-in on a new session creates it under a new id, whatever came back",
                Ending {
                    existed: false,
                    stored_expires: None,
                    fate: Fate::Cycle,
                    ..loaded(fresh)
                },
                Write::Create {
                    expires_at: full(),
                    check_retired: false,
                },
            ),
            (
                "data inserted after destroy starts a new session",
                Ending {
                    existed: false,
                    stored_expires: None,
                    fate: Fate::Destroy { purge: None },
                    ..loaded(fresh)
                },
                Write::Create {
                    expires_at: full(),
                    check_retired: false,
                },
            ),
            (
                "a new session left empty is never stored",
                Ending {
                    existed: false,
                    has_data: false,
                    stored_expires: None,
                    ..loaded(fresh)
                },
                Write::Nothing,
            ),
        ];
        for (what, ending, expected) in cases {
            assert_eq!(act(&ending), expected, "{what}");
        }
    }

    #[test]
    fn without_refresh_each_request_a_read_writes_nothing() {
        let policy = Policy {
            refresh_each_request: false,
            ..policy()
        };
        let ending = loaded(policy.now + DAY);
        assert_eq!(
            plan(&ending, || policy),
            Plan::Act {
                delete: false,
                write: Write::Nothing
            }
        );
    }

    #[test]
    fn destroy_deletes_the_presented_entry_first() {
        let id = SessionId::generate();
        let ending = Ending {
            existed: false,
            has_data: false,
            stored_expires: None,
            fate: Fate::Destroy { purge: Some(id) },
            ..loaded(full())
        };
        assert_eq!(
            plan(&ending, policy),
            Plan::Act {
                delete: true,
                write: Write::Nothing
            }
        );
        assert_eq!(
            cookie(&ending, &Write::Nothing, Answer::Nothing),
            Ok(Cookie::Remove)
        );
        let unpresented = Ending {
            presented: false,
            fate: Fate::Destroy { purge: None },
            ..ending
        };
        assert_eq!(
            cookie(&unpresented, &Write::Nothing, Answer::Nothing),
            Ok(Cookie::Leave)
        );
    }

    /// The cookie for each write and answer, as a table.
    #[test]
    fn the_cookie_for_each_write_and_answer() {
        let at = full();
        let stored = Answer::Saved(Saved::Stored);
        let empty = Answer::Saved(Saved::Empty);
        let save = |resend| Write::Save {
            expires_at: at,
            seen: true,
            resend,
        };
        let create = Write::Create {
            expires_at: at,
            check_retired: true,
        };
        let touch = Write::Touch { expires_at: at };
        let browser = Ending {
            permanent: false,
            ..changed()
        };
        let removals_only = Ending {
            sets_keys: false,
            ..changed()
        };
        let emptied = Ending {
            has_data: false,
            ..changed()
        };
        let new = Ending {
            existed: false,
            presented: false,
            ..changed()
        };
        let resigned = Ending {
            resign: true,
            ..loaded(at - HOUR)
        };
        /// (what, the request, its write, the store's answer, the cookie).
        type Case = (
            &'static str,
            Ending,
            Write,
            Answer,
            Result<Cookie, Superseded>,
        );
        let cases: Vec<Case> = vec![
            (
                "a saved change that must reach the browser",
                changed(),
                save(true),
                stored,
                Ok(Cookie::Same(Some(at))),
            ),
            (
                "a saved change the browser's cookie already covers",
                changed(),
                save(false),
                stored,
                Ok(Cookie::Leave),
            ),
            (
                "a browser session's cookie carries no expiry",
                browser,
                save(true),
                stored,
                Ok(Cookie::Same(None)),
            ),
            (
                "a log-in's new id",
                changed(),
                Write::Cycle { expires_at: at },
                stored,
                Ok(Cookie::New(Some(at))),
            ),
            (
                "a new session's id",
                new,
                create,
                stored,
                Ok(Cookie::New(Some(at))),
            ),
            (
                "keys set on a session that ended meanwhile are refused",
                changed(),
                save(false),
                empty,
                Err(Superseded),
            ),
            (
                "a log-in racing a log-out is refused",
                changed(),
                Write::Cycle { expires_at: at },
                empty,
                Err(Superseded),
            ),
            (
                "removals on a session that ended meanwhile hold",
                removals_only,
                save(false),
                empty,
                Ok(Cookie::Leave),
            ),
            (
                "a session the request emptied loses its cookie",
                emptied,
                save(false),
                empty,
                Ok(Cookie::Remove),
            ),
            (
                "a touch re-sends the moved expiry",
                loaded(at),
                touch,
                Answer::Touched(at),
                Ok(Cookie::Same(Some(at))),
            ),
            (
                "a touch that finds the session gone leaves the cookie",
                loaded(at),
                touch,
                Answer::Gone,
                Ok(Cookie::Leave),
            ),
            (
                "a failed touch leaves the cookie",
                loaded(at),
                touch,
                Answer::TouchFailed,
                Ok(Cookie::Leave),
            ),
            (
                "a fallback-signed cookie is re-signed on a read",
                resigned,
                Write::Nothing,
                Answer::Nothing,
                Ok(Cookie::Same(Some(at - HOUR))),
            ),
            (
                "a fallback-signed cookie is re-signed when a touch failed",
                resigned,
                touch,
                Answer::TouchFailed,
                Ok(Cookie::Same(Some(at - HOUR))),
            ),
            (
                "a plain read sends no cookie",
                loaded(at),
                Write::Nothing,
                Answer::Nothing,
                Ok(Cookie::Leave),
            ),
        ];
        for (what, ending, write, answer, expected) in cases {
            assert_eq!(cookie(&ending, &write, answer), expected, "{what}");
        }
    }

    /// SESSION_ABSOLUTE_LIFETIME: no write moves an expiry past the deadline, and a
    /// session at its deadline is not touched again.
    #[test]
    fn the_absolute_deadline_caps_every_expiry() {
        let now = policy().now;
        let deadline = now + 20 * DAY;
        let capped = || Policy {
            deadline: Some(deadline),
            ..policy()
        };
        let writes = |ending: &Ending| match plan(ending, capped) {
            Plan::Act { write, .. } => write,
            other => panic!("expected store work, got {other:?}"),
        };
        let new = Ending {
            status: 200,
            touched: true,
            has_data: true,
            permanent: true,
            ..Ending::default()
        };
        assert_eq!(
            writes(&new),
            Write::Create {
                expires_at: deadline,
                check_retired: true
            }
        );
        let lagging = loaded(now + DAY);
        assert_eq!(
            writes(&lagging),
            Write::Touch {
                expires_at: deadline
            },
            "a due refresh stops at the deadline"
        );
        assert_eq!(
            writes(&loaded(deadline)),
            Write::Nothing,
            "at the deadline already: nothing to refresh"
        );
        // Near the deadline, the refresh throttle holds as ever: the stored expiry lags
        // the capped one by less than the granularity.
        let near = || Policy {
            deadline: Some(now + 2 * HOUR),
            ..policy()
        };
        assert!(matches!(
            plan(&loaded(now + HOUR), near),
            Plan::Act {
                write: Write::Nothing,
                ..
            }
        ));
        let cycling = Ending {
            fate: Fate::Cycle,
            ..loaded(deadline)
        };
        assert_eq!(
            writes(&cycling),
            Write::Cycle {
                expires_at: deadline
            }
        );
        // A deadline further than a lifetime away changes nothing.
        let far = || Policy {
            deadline: Some(now + 100 * DAY),
            ..policy()
        };
        assert_eq!(
            match plan(&new, far) {
                Plan::Act { write, .. } => write,
                other => panic!("{other:?}"),
            },
            Write::Create {
                expires_at: full(),
                check_retired: true
            }
        );
    }
}
