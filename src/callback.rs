//! Button data: what a pressed button asks for, encoded in Telegram's 64 bytes.
//!
//! Data names node ids rather than positions, so a button keeps its meaning
//! across restarts and stays checkable against the tree when it is pressed.

use crate::lang::Lang;

/// Telegram refuses callback data longer than this many bytes.
pub const MAX_DATA_BYTES: usize = 64;

/// The lowest and highest rating of a case (`Action::CaseRate`).
pub(crate) const RATINGS: std::ops::RangeInclusive<u8> = 1..=5;

/// The action behind a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Follow an edge of the tree: from the node whose menu held the button
    /// to its target (an answer, or "not solved" at an end). `nth` tells
    /// apart several answers of one question that lead to the same node
    /// (0 for the first), so the answer itself is known.
    Go { from: String, to: String, nth: u8 },
    /// Return to the question before `from`.
    Back { from: String },
    /// Clear the conversation and show the entry menu.
    Restart,
    /// The steps at the end `at` worked.
    Solved { at: String },
    /// Switch the language.
    Lang(Lang),
    /// Open a node directly, as a free-text candidate offers it.
    Jump { to: String },
    /// Ask when the SMS arrived, to remind before its window closes; `at`
    /// is the node whose menu offered it.
    RemindAsk { at: String },
    /// Remind once after the typical wait for a new code.
    RemindNewCode { at: String },
    /// Show `at`'s menu again (leaving the arrival question).
    Show { at: String },
    /// The SMS arrived this many hours ago (0: just now).
    Arrived { hours: u32 },
    /// The code was entered: the plan's reminders are no longer needed.
    Verified { plan: i64 },
    /// Cancel one plan's reminders.
    CancelPlan { plan: i64 },
    /// After /reset: keep the pending reminders.
    KeepReminders,
    /// After /reset: cancel the pending reminders.
    DropReminders,
    /// At an end: hand the case to a person; asks for consent first.
    Handoff { at: String },
    /// Consent given: post the case from `at` to the support team.
    HandoffConfirm { at: String },
    /// At an end: ask me tomorrow whether it got solved.
    Later { at: String },
    /// The next-day answer: solved after all, or not, at the end `at`.
    LaterAnswer { solved: bool, at: String },
    /// A staff member takes the case.
    CaseTake { case: i64 },
    /// Either side closes the case.
    CaseClose { case: i64 },
    /// The person rates their closed case, 1 to 5.
    CaseRate { case: i64, stars: u8 },
    /// The person lets the support team see their screenshot `photo`,
    /// sent in the case `case`.
    PhotoSend { case: i64, photo: i64 },
    /// The person keeps that screenshot from the team: it is discarded.
    PhotoDrop { case: i64, photo: i64 },
}

impl Action {
    pub fn encode(&self) -> String {
        match self {
            Action::Go { from, to, nth: 0 } => format!("g:{from}:{to}"),
            Action::Go { from, to, nth } => format!("g:{from}:{to}:{nth}"),
            Action::Back { from } => format!("b:{from}"),
            Action::Restart => "h".to_string(),
            Action::Solved { at } => format!("s:{at}"),
            Action::Lang(lang) => format!("l:{}", lang.code()),
            Action::Jump { to } => format!("j:{to}"),
            Action::RemindAsk { at } => format!("r:{at}"),
            Action::RemindNewCode { at } => format!("w:{at}"),
            Action::Show { at } => format!("t:{at}"),
            Action::Arrived { hours } => format!("a:{hours}"),
            Action::Verified { plan } => format!("v:{plan}"),
            Action::CancelPlan { plan } => format!("x:{plan}"),
            Action::KeepReminders => "k".to_string(),
            Action::DropReminders => "d".to_string(),
            Action::Handoff { at } => format!("p:{at}"),
            Action::HandoffConfirm { at } => format!("q:{at}"),
            Action::Later { at } => format!("m:{at}"),
            Action::LaterAnswer { solved, at } => format!("n:{}:{at}", u8::from(*solved)),
            Action::CaseTake { case } => format!("y:{case}"),
            Action::CaseClose { case } => format!("z:{case}"),
            Action::CaseRate { case, stars } => format!("e:{case}:{stars}"),
            Action::PhotoSend { case, photo } => format!("ps:{case}:{photo}"),
            Action::PhotoDrop { case, photo } => format!("pd:{case}:{photo}"),
        }
    }

    /// Parses button data. Anything malformed — tampered, truncated, or from
    /// a format this version does not know — is `None`, never an error.
    pub fn parse(data: &str) -> Option<Action> {
        if data.len() > MAX_DATA_BYTES {
            return None;
        }
        let (kind, rest) = data.split_once(':').unwrap_or((data, ""));
        let action = match kind {
            "g" => {
                let mut parts = rest.split(':');
                let (from, to) = (parts.next()?, parts.next()?);
                // Only the canonical form: no ":0", no leading zeros.
                let nth = match parts.next() {
                    None => 0,
                    Some(n) if !n.starts_with('0') => n.parse::<u8>().ok()?,
                    Some(_) => return None,
                };
                if parts.next().is_some() {
                    return None;
                }
                Action::Go {
                    from: valid_id(from)?.to_string(),
                    to: valid_id(to)?.to_string(),
                    nth,
                }
            }
            "b" => Action::Back {
                from: valid_id(rest)?.to_string(),
            },
            "h" if rest.is_empty() && !data.ends_with(':') => Action::Restart,
            "s" => Action::Solved {
                at: valid_id(rest)?.to_string(),
            },
            "l" => Action::Lang(rest.parse().ok().filter(|l: &Lang| l.code() == rest)?),
            "j" => Action::Jump {
                to: valid_id(rest)?.to_string(),
            },
            "r" => Action::RemindAsk {
                at: valid_id(rest)?.to_string(),
            },
            "w" => Action::RemindNewCode {
                at: valid_id(rest)?.to_string(),
            },
            "t" => Action::Show {
                at: valid_id(rest)?.to_string(),
            },
            "a" => Action::Arrived {
                hours: u32::try_from(canonical_number(rest)?).ok()?,
            },
            "v" => Action::Verified {
                plan: canonical_number(rest).filter(|p| *p > 0)?,
            },
            "x" => Action::CancelPlan {
                plan: canonical_number(rest).filter(|p| *p > 0)?,
            },
            "k" if rest.is_empty() && !data.ends_with(':') => Action::KeepReminders,
            "d" if rest.is_empty() && !data.ends_with(':') => Action::DropReminders,
            "p" => Action::Handoff {
                at: valid_id(rest)?.to_string(),
            },
            "q" => Action::HandoffConfirm {
                at: valid_id(rest)?.to_string(),
            },
            "m" => Action::Later {
                at: valid_id(rest)?.to_string(),
            },
            "n" => {
                let (solved, at) = rest.split_once(':')?;
                let solved = match solved {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                Action::LaterAnswer {
                    solved,
                    at: valid_id(at)?.to_string(),
                }
            }
            "y" => Action::CaseTake {
                case: canonical_number(rest).filter(|c| *c > 0)?,
            },
            "z" => Action::CaseClose {
                case: canonical_number(rest).filter(|c| *c > 0)?,
            },
            "e" => {
                let (case, stars) = rest.split_once(':')?;
                let stars = u8::try_from(canonical_number(stars)?).ok()?;
                Action::CaseRate {
                    case: canonical_number(case).filter(|c| *c > 0)?,
                    stars: Some(stars).filter(|s| RATINGS.contains(s))?,
                }
            }
            "ps" | "pd" => {
                let (case, photo) = rest.split_once(':')?;
                let case = canonical_number(case).filter(|c| *c > 0)?;
                let photo = canonical_number(photo).filter(|p| *p > 0)?;
                if kind == "ps" {
                    Action::PhotoSend { case, photo }
                } else {
                    Action::PhotoDrop { case, photo }
                }
            }
            _ => return None,
        };
        Some(action)
    }
}

/// Node ids are lowercase ASCII letters, digits and underscores.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_id(id: &str) -> Option<&str> {
    is_valid_id(id).then_some(id)
}

/// A non-negative decimal number written only one way: digits, no sign,
/// no leading zero.
fn canonical_number(text: &str) -> Option<i64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    (digits && canonical).then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(from: &str, to: &str) -> Action {
        Action::Go {
            from: from.into(),
            to: to.into(),
            nth: 0,
        }
    }

    #[test]
    fn every_action_survives_a_round_trip() {
        let actions = [
            go("menu", "timeout"),
            Action::Go {
                from: "nr_resend_q".into(),
                to: "nr_resend".into(),
                nth: 1,
            },
            Action::Back {
                from: "nr_signal".into(),
            },
            Action::Restart,
            Action::Solved {
                at: "to_resubmit".into(),
            },
            Action::Lang(Lang::En),
            Action::Lang(Lang::Zh),
            Action::Jump {
                to: "mm_norecord".into(),
            },
            Action::RemindAsk {
                at: "to_new_sms".into(),
            },
            Action::RemindNewCode {
                at: "rs_waiting".into(),
            },
            Action::Show {
                at: "to_new_sms".into(),
            },
            Action::Arrived { hours: 0 },
            Action::Arrived { hours: 12 },
            Action::Verified { plan: 7 },
            Action::CancelPlan {
                plan: 9_007_199_254_740_991,
            },
            Action::KeepReminders,
            Action::DropReminders,
            Action::Handoff {
                at: "contact_provider".into(),
            },
            Action::HandoffConfirm {
                at: "out_of_checks".into(),
            },
            Action::Later {
                at: "out_of_checks".into(),
            },
            Action::LaterAnswer {
                solved: true,
                at: "nr_wait".into(),
            },
            Action::LaterAnswer {
                solved: false,
                at: "nr_wait".into(),
            },
            Action::CaseTake { case: 12 },
            Action::CaseClose { case: 3 },
            Action::CaseRate { case: 3, stars: 1 },
            Action::CaseRate {
                case: i64::MAX,
                stars: 5,
            },
        ];
        for action in actions {
            assert_eq!(Action::parse(&action.encode()), Some(action));
        }
    }

    #[test]
    fn tampered_or_foreign_data_is_rejected() {
        for data in [
            "",
            "g",
            "g:",
            "g:menu",
            "g:menu:",
            "g:Menu:timeout",
            "g:menu:time out",
            "g:menu:timeout:extra",
            "g:menu:timeout:0",
            "g:menu:timeout:01",
            "g:menu:timeout:256",
            "g:menu:timeout:1:2",
            "b:",
            "h:",
            "h:x",
            "s:",
            "l:fr",
            "l:EN",
            "j:",
            "j:a b",
            "x:menu",
            "x:0",
            "x:-3",
            "v:07",
            "v:",
            "v:1x",
            "a:",
            "a:+2",
            "a:02",
            "a:99999999999",
            "r:",
            "r:A",
            "k:",
            "d:x",
            "menu",
            "g:menu:\u{0}",
            "g:菜单:timeout",
            "p:",
            "q:A",
            "m:",
            "n:2:nr_wait",
            "n:1",
            "n:1:",
            "n::nr_wait",
            "y:0",
            "e:3",
            "e:3:",
            "e:3:0",
            "e:3:6",
            "e:3:05",
            "e:0:4",
            "e::4",
            "e:3:4:1",
            "e:3:256",
            "y:-1",
            "z:01",
            "z:",
        ] {
            assert_eq!(Action::parse(data), None, "{data:?}");
        }
    }

    #[test]
    fn data_over_telegrams_limit_is_rejected() {
        let long = format!("b:{}", "a".repeat(MAX_DATA_BYTES));
        assert_eq!(Action::parse(&long), None);
    }

    #[test]
    fn photo_buttons_fit_telegrams_limit_and_tampered_ones_are_refused() {
        let largest = [
            Action::PhotoSend {
                case: i64::MAX,
                photo: i64::MAX,
            },
            Action::PhotoDrop {
                case: i64::MAX,
                photo: i64::MAX,
            },
        ];
        for action in largest {
            assert!(action.encode().len() <= MAX_DATA_BYTES, "{action:?}");
            assert_eq!(Action::parse(&action.encode()), Some(action));
        }
        let send = Action::PhotoSend { case: 3, photo: 17 };
        assert_eq!(send.encode(), "ps:3:17");
        assert_eq!(
            Action::parse("pd:3:17"),
            Some(Action::PhotoDrop { case: 3, photo: 17 })
        );
        for data in [
            "ps",
            "ps:",
            "ps:3",
            "ps:3:",
            "ps::17",
            "ps:0:17",
            "ps:3:0",
            "ps:03:17",
            "ps:3:017",
            "ps:-3:17",
            "ps:3:-17",
            "ps:3:17:1",
            "ps:3:1x",
            "ps:a:17",
            "pd:3",
            "pd:3:17:",
            "px:3:17",
            "PS:3:17",
            "p:3:17",
            "ps:3:99999999999999999999",
        ] {
            assert_eq!(Action::parse(data), None, "{data:?}");
        }
    }
}
