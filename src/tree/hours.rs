//! Office hours: the provider's staff hours as written in `provider.toml` ("Mon-Fri 09:00-18:00"), read, and asked whether staff are in and when they are back.
//!
//! The syntax is clauses split by `;`, each days then one or more daily
//! windows split by `,`: `Mon-Fri 09:00-12:00, 13:30-18:00; Sat 10:00-14:00`.
//! Days are `Mon` … `Sun`, a range (`Mon-Fri`) or a list (`Mon,Wed`); a
//! window is `HH:MM-HH:MM` within one day (`24:00` may end it). Times are in
//! the profile's time zone.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::clock::Instant;
use crate::lang::Lang;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
const DAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// When the provider's staff are in, in its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    /// Per weekday (Monday first): windows as minutes since midnight, start
    /// inclusive, end exclusive, sorted.
    days: [Vec<(u32, u32)>; 7],
    zone: Tz,
}

impl OfficeHours {
    /// Reads `text` in `zone`, or says what is wrong with it.
    pub fn parse(text: &str, zone: Tz) -> Result<OfficeHours, String> {
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        for clause in text.split(';').map(str::trim) {
            if clause.is_empty() {
                continue;
            }
            let (names, windows) = clause
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("\"{clause}\" names days but no hours"))?;
            let which = parse_days(names.trim())?;
            for window in windows.split(',').map(str::trim) {
                let (start, end) = parse_window(window)?;
                for day in &which {
                    days[*day].push((start, end));
                }
            }
        }
        if days.iter().all(Vec::is_empty) {
            return Err("no day has hours".to_string());
        }
        for windows in &mut days {
            windows.sort_unstable();
            if windows.windows(2).any(|pair| pair[1].0 < pair[0].1) {
                return Err("two windows of one day overlap".to_string());
            }
        }
        Ok(OfficeHours { days, zone })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether `at` falls inside a window.
    pub fn is_open(&self, at: Instant) -> bool {
        let Some(local) = self.zone.timestamp_opt(at, 0).single() else {
            return false;
        };
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = local.hour() * 60 + local.minute();
        self.days[day]
            .iter()
            .any(|(start, end)| (*start..*end).contains(&minute))
    }

    /// The next time a window opens after `at`: within the coming eight
    /// days there is always one, as some day has hours.
    pub fn next_open(&self, at: Instant) -> Option<chrono::DateTime<Tz>> {
        let today = self.zone.timestamp_opt(at, 0).single()?.date_naive();
        (0..8)
            .filter_map(|n| today.checked_add_days(chrono::Days::new(n)))
            .flat_map(|date| {
                let day = date.weekday().num_days_from_monday() as usize;
                self.days[day]
                    .iter()
                    .filter_map(move |(start, _)| self.local(date, *start))
            })
            .find(|opens| opens.timestamp() > at)
    }

    /// `date` at `minute` past midnight in the zone; in a gap of a clock
    /// change, the first moment after it.
    fn local(&self, date: NaiveDate, minute: u32) -> Option<chrono::DateTime<Tz>> {
        let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?;
        let naive = date.and_time(time);
        self.zone
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                let later = naive + chrono::Duration::hours(1);
                self.zone.from_local_datetime(&later).earliest()
            })
    }

    /// The hours in words, days grouped: "Mon–Fri 09:00–18:00 (Asia/Shanghai)".
    pub fn describe(&self, lang: Lang) -> String {
        let names = match lang {
            Lang::Zh => DAYS_ZH,
            Lang::En => DAYS_EN,
        };
        let mut parts: Vec<String> = Vec::new();
        let mut day = 0;
        while day < 7 {
            if self.days[day].is_empty() {
                day += 1;
                continue;
            }
            let mut last = day;
            while last + 1 < 7 && self.days[last + 1] == self.days[day] {
                last += 1;
            }
            let days = if last == day {
                names[day].to_string()
            } else {
                let to = if lang == Lang::Zh { "至" } else { "–" };
                format!("{}{to}{}", names[day], names[last])
            };
            let windows: Vec<String> = self.days[day]
                .iter()
                .map(|(s, e)| format!("{}–{}", clock(*s), clock(*e)))
                .collect();
            parts.push(format!("{days} {}", windows.join(", ")));
            day = last + 1;
        }
        match lang {
            Lang::Zh => format!("{}（{}）", parts.join("；"), self.zone.name()),
            Lang::En => format!("{} ({})", parts.join("; "), self.zone.name()),
        }
    }

    /// When staff are back, for a person: the day, date and time in the
    /// zone, with the zone's name.
    pub fn when(&self, at: chrono::DateTime<Tz>, lang: Lang) -> String {
        let day = at.weekday().num_days_from_monday() as usize;
        match lang {
            Lang::Zh => format!(
                "{}月{}日（{}）{:02}:{:02}（{}）",
                at.month(),
                at.day(),
                DAYS_ZH[day],
                at.hour(),
                at.minute(),
                self.zone.name()
            ),
            Lang::En => format!(
                "{} {} {}, {:02}:{:02} ({})",
                WEEKDAYS_EN[day],
                at.format("%b"),
                at.day(),
                at.hour(),
                at.minute(),
                self.zone.name()
            ),
        }
    }
}

fn clock(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn day_index(name: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("\"{name}\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(names: &str) -> Result<Vec<usize>, String> {
    let mut days = Vec::new();
    for part in names.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day_index(from.trim())?, day_index(to.trim())?);
                if from > to {
                    return Err(format!(
                        "\"{part}\" runs backwards: write days Monday first"
                    ));
                }
                days.extend(from..=to);
            }
            None => days.push(day_index(part)?),
        }
    }
    Ok(days)
}

fn parse_time(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn parse_window(window: &str) -> Result<(u32, u32), String> {
    let bad = || format!("\"{window}\" is not a window such as 09:00-18:00");
    let (start, end) = window.split_once('-').ok_or_else(bad)?;
    let start = parse_time(start.trim()).ok_or_else(bad)?;
    let end = parse_time(end.trim()).ok_or_else(bad)?;
    if start >= end {
        return Err(format!(
            "\"{window}\" ends before it starts: a window lies within one day"
        ));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Instant {
        SHANGHAI
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn weekday_windows_are_open_and_the_weekend_is_not() {
        let hours = OfficeHours::parse("Mon-Fri 09:00-12:00, 13:30-18:00", SHANGHAI).unwrap();
        // 2024-01-08 is a Monday.
        assert!(hours.is_open(at(2024, 1, 8, 9, 0)));
        assert!(!hours.is_open(at(2024, 1, 8, 12, 0)));
        assert!(hours.is_open(at(2024, 1, 8, 17, 59)));
        assert!(!hours.is_open(at(2024, 1, 8, 18, 0)));
        assert!(!hours.is_open(at(2024, 1, 13, 10, 0)));
    }

    #[test]
    fn the_next_opening_skips_the_weekend_and_the_lunch_break() {
        let hours = OfficeHours::parse("Mon-Fri 09:00-12:00, 13:30-18:00", SHANGHAI).unwrap();
        let friday_evening = at(2024, 1, 12, 19, 0);
        let back = hours.next_open(friday_evening).unwrap();
        assert_eq!(back.timestamp(), at(2024, 1, 15, 9, 0));
        assert_eq!(
            hours.when(back, Lang::En),
            "Monday Jan 15, 09:00 (Asia/Shanghai)"
        );
        assert_eq!(
            hours.when(back, Lang::Zh),
            "1月15日（周一）09:00（Asia/Shanghai）"
        );
        let lunch = hours.next_open(at(2024, 1, 8, 12, 30)).unwrap();
        assert_eq!(lunch.timestamp(), at(2024, 1, 8, 13, 30));
    }

    #[test]
    fn hours_are_described_with_days_grouped() {
        let hours = OfficeHours::parse("Mon-Fri 09:00-18:00; Sat 10:00-14:00", SHANGHAI).unwrap();
        assert_eq!(
            hours.describe(Lang::En),
            "Mon–Fri 09:00–18:00; Sat 10:00–14:00 (Asia/Shanghai)"
        );
        assert_eq!(
            hours.describe(Lang::Zh),
            "周一至周五 09:00–18:00；周六 10:00–14:00（Asia/Shanghai）"
        );
    }

    #[test]
    fn malformed_hours_say_what_is_wrong() {
        let err = |text| OfficeHours::parse(text, SHANGHAI).unwrap_err();
        assert_eq!(
            err("Mon-Fri 9-18"),
            "\"9-18\" is not a window such as 09:00-18:00"
        );
        assert_eq!(
            err("Mon-Fry 09:00-18:00"),
            "\"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
        );
        assert_eq!(
            err("Fri-Mon 09:00-18:00"),
            "\"Fri-Mon\" runs backwards: write days Monday first"
        );
        assert_eq!(
            err("Mon 18:00-09:00"),
            "\"18:00-09:00\" ends before it starts: a window lies within one day"
        );
        assert_eq!(err("Mon"), "\"Mon\" names days but no hours");
        assert_eq!(err(""), "no day has hours");
        assert_eq!(
            err("Mon 09:00-12:00, 11:00-13:00"),
            "two windows of one day overlap"
        );
    }
}
