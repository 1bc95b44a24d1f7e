//! Nudges: a case nobody has answered is pinged once in the staff chat after a wait, and a taken case whose person waits is pinged to whoever took it after another.
//!
//! Pings go out only inside the provider's office hours: a wait that
//! began outside them counts from when they open. Each ping is marked on
//! the case before it is sent, so of several instances one sends it.

use super::{Case, Status};
use crate::app::{App, NudgeWaits as Waits};
use crate::clock::Instant;
use crate::store::StoreError;
use crate::tree::hours::OfficeHours;

/// The staff chat as pings reach it, which the adapter provides.
pub(crate) trait Pings {
    /// Pings the staff chat about a case; whether it went out.
    fn nudge(&self, case: &Case, nudge: Nudge) -> impl std::future::Future<Output = bool> + Send;
}

/// A ping about one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nudge {
    /// Nobody has answered it: to the staff chat.
    Unanswered { waited: i64 },
    /// The person has waited on whoever took it since `since`.
    Idle { since: Instant, waited: i64 },
}

/// What is due about a case at `now`: a ping now, or when the next one
/// could be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    Now(Nudge),
    At(Instant),
    Never,
}

/// When a wait that began at `start` counts from: then, inside office
/// hours, else when they next open.
fn counted_from(hours: Option<&OfficeHours>, start: Instant) -> Instant {
    match hours {
        Some(hours) if !hours.is_open(start) => hours
            .next_open(start)
            .map_or(start, |opens| opens.timestamp()),
        _ => start,
    }
}

/// What is due about `case` at `now`.
pub(crate) fn due(case: &Case, waits: Waits, hours: Option<&OfficeHours>, now: Instant) -> Due {
    let desk = &case.desk;
    let (start, wait, nudge): (Instant, i64, fn(Instant, i64) -> Nudge) = match case.status() {
        Status::Open if desk.staff_at.is_none() && !desk.nudged => match waits.unanswered {
            Some(wait) => (case.person_last(), wait, |_, waited| Nudge::Unanswered {
                waited,
            }),
            None => return Due::Never,
        },
        Status::Taken if desk.taken_by_id.is_some() => {
            let since = case
                .person_last()
                .max(desk.taken_at.unwrap_or(Instant::MIN));
            match waits.idle {
                Some(_) if desk.idle_nudged == Some(since) => return Due::Never,
                Some(wait) => (since, wait, |since, waited| Nudge::Idle { since, waited }),
                None => return Due::Never,
            }
        }
        _ => return Due::Never,
    };
    let at = counted_from(hours, start).saturating_add(wait);
    if now < at {
        return Due::At(at);
    }
    if hours.is_some_and(|h| !h.is_open(now)) {
        return Due::At(counted_from(hours, now));
    }
    Due::Now(nudge(start, now - start))
}

/// Pings what is due among the open cases; when the next could be due
/// (at most `sweep` from now, so a case opened meanwhile is not missed).
pub(crate) async fn round(
    staff: &impl Pings,
    app: &App,
    now: Instant,
    sweep: i64,
) -> Result<Option<Instant>, StoreError> {
    let waits = app.settings.nudges;
    let Some(shortest) = waits.shortest() else {
        return Ok(None);
    };
    if app.settings.support_chat.is_none() {
        return Ok(None);
    }
    let tree = app.tree();
    let mut next = now.saturating_add(shortest.min(sweep));
    for case in app.store.active_cases().await? {
        match due(&case, waits, tree.provider().hours.as_ref(), now) {
            Due::Now(nudge) => {
                let idle = match nudge {
                    Nudge::Idle { since, .. } => Some(since),
                    Nudge::Unanswered { .. } => None,
                };
                if app.store.mark_nudged(case.id, idle).await? {
                    if staff.nudge(&case, nudge).await {
                        log::info!("case {}: pinged ({nudge:?})", case.id);
                    } else {
                        log::warn!("case {}: a ping could not be sent", case.id);
                    }
                }
            }
            Due::At(at) => next = next.min(at),
            Due::Never => {}
        }
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::Desk;
    use crate::lang::Lang;

    fn case(opened_at: Instant) -> Case {
        Case {
            id: 1,
            user: 7,
            chat: 7,
            thread: None,
            name: "A".into(),
            username: None,
            lang: Lang::Zh,
            node: "n".into(),
            place: String::new(),
            summary: String::new(),
            opened_at,
            taken_by: None,
            closed: false,
            post: None,
            topic: None,
            in_hours: true,
            first_answer_at: None,
            desk: Desk::default(),
        }
    }

    const WAITS: Waits = Waits {
        unanswered: Some(600),
        idle: Some(3600),
    };

    #[test]
    fn an_unanswered_case_is_pinged_once_after_its_wait() {
        let provider: Option<&OfficeHours> = None;
        let mut c = case(1000);
        assert_eq!(due(&c, WAITS, provider, 1599), Due::At(1600));
        assert_eq!(
            due(&c, WAITS, provider, 1600),
            Due::Now(Nudge::Unanswered { waited: 600 })
        );
        c.desk.nudged = true;
        assert_eq!(due(&c, WAITS, provider, 5000), Due::Never);
        // Answered before the wait ran out: no ping.
        let mut answered = case(1000);
        answered.desk.staff_at = Some(1100);
        answered.desk.awaiting_person = true;
        assert_eq!(due(&answered, WAITS, provider, 5000), Due::Never);
        // Turned off.
        let off = Waits {
            unanswered: None,
            ..WAITS
        };
        assert_eq!(due(&case(1000), off, provider, 5000), Due::Never);
    }

    #[test]
    fn a_taken_case_is_pinged_once_per_silence_of_its_person() {
        let provider: Option<&OfficeHours> = None;
        let mut c = case(1000);
        c.taken_by = Some("Li".into());
        c.desk.taken_by_id = Some(42);
        c.desk.taken_at = Some(2000);
        c.desk.person_at = Some(1000);
        // The wait counts from the take, which came after the person wrote.
        assert_eq!(due(&c, WAITS, provider, 5599), Due::At(5600));
        let pinged = Nudge::Idle {
            since: 2000,
            waited: 3600,
        };
        assert_eq!(due(&c, WAITS, provider, 5600), Due::Now(pinged));
        c.desk.idle_nudged = Some(2000);
        assert_eq!(due(&c, WAITS, provider, 9000), Due::Never);
        // Staff answered: it waits for the person, nobody is pinged.
        c.desk.awaiting_person = true;
        assert_eq!(due(&c, WAITS, provider, 9000), Due::Never);
        // The person wrote again: a new silence, a new ping after its wait.
        c.desk.awaiting_person = false;
        c.desk.person_at = Some(9000);
        assert_eq!(due(&c, WAITS, provider, 9000), Due::At(12600));
    }

    #[test]
    fn outside_office_hours_the_wait_counts_from_the_opening() {
        // Weekdays 09:00-18:00 in UTC; 1970-01-05 was a Monday.
        let hours = OfficeHours::parse("Mon-Fri 09:00-18:00", chrono_tz::UTC).unwrap();
        let provider = Some(&hours);
        let monday = 4 * 86400;
        let night = monday + 2 * 3600;
        let opens = monday + 9 * 3600;
        assert_eq!(
            due(&case(night), WAITS, provider, night + 700),
            Due::At(opens + 600)
        );
        assert!(matches!(
            due(&case(night), WAITS, provider, opens + 600),
            Due::Now(Nudge::Unanswered { .. })
        ));
    }
}
