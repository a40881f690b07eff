//! Delivery in the recipient's local time.
//!
//! The DST rule (jiff's "compatible" disambiguation, as RFC 5545 and
//! Temporal do): a local time that does not exist that day — 02:30 on the
//! night clocks spring forward — is delivered as many minutes after the gap
//! as it lay inside it (03:30); a local time that happens twice when clocks
//! fall back is delivered at the first. A window holds in wall-clock time:
//! `["09:00", "21:00"]` is 09:00–21:00 on the recipient's clock on every day,
//! whatever the offset.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A time of day, `"HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
}

impl LocalTime {
    /// Parses `"HH:MM"` (24-hour clock).
    pub fn parse(text: &str) -> Option<Self> {
        let (h, m) = text.split_once(':')?;
        // Digits only: `u8::from_str` would take a sign ("+9").
        let digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return None;
        }
        let hour: u8 = h.parse().ok()?;
        let minute: u8 = m.parse().ok()?;
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    fn civil(self) -> Time {
        // In range by construction (parse checks both).
        Time::constant(self.hour as i8, self.minute as i8, 0, 0)
    }
}

/// When a notification may be delivered, in the recipient's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deliver {
    /// At this time of day: the next one from now (today if still ahead).
    At(LocalTime),
    /// Inside this window: now if inside it, else at its next start. A window
    /// whose end is before its start spans midnight (`["21:00", "07:00"]`).
    Within(LocalTime, LocalTime),
}

/// The IANA time zone `name`, from the bundled database (`None` when unknown).
pub fn zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

impl Deliver {
    /// The earliest epoch ms at or after `now_ms` that satisfies this rule in
    /// `zone`.
    pub fn next(self, now_ms: u64, zone: &TimeZone) -> u64 {
        let Some(now) = timestamp(now_ms) else {
            return now_ms;
        };
        let local = now.to_zoned(zone.clone()).datetime();
        let time = local.time();
        let target = match self {
            Deliver::At(at) if time <= at.civil() => Some(local.date().to_datetime(at.civil())),
            Deliver::At(at) => next_day(local.date()).map(|d| d.to_datetime(at.civil())),
            Deliver::Within(start, end) if inside(time, start.civil(), end.civil()) => return now_ms,
            Deliver::Within(start, end) => {
                let day = if time < start.civil() {
                    Some(local.date())
                } else {
                    next_day(local.date())
                };
                return day
                    .and_then(|day| window_start(day, start, end, zone))
                    .map_or(now_ms, |ms| ms.max(now_ms));
            }
        };
        target
            .and_then(|t| epoch_ms(t, zone))
            .map_or(now_ms, |ms| ms.max(now_ms))
    }
}

/// When the window opens on `day`. A start DST skips resolves past the gap
/// by the gap's length (02:30 → 03:30 on Berlin's spring-forward Sunday),
/// so then the window opens as the gap ends (03:00) if that is inside it
/// (02:30–03:15), and on the day after if DST skips all of it (02:00–03:00).
fn window_start(day: Date, start: LocalTime, end: LocalTime, zone: &TimeZone) -> Option<u64> {
    let is_inside = |at: Timestamp| inside(at.to_zoned(zone.clone()).time(), start.civil(), end.civil());
    let opens = day.to_datetime(start.civil()).to_zoned(zone.clone()).ok()?.timestamp();
    if is_inside(opens) {
        return u64::try_from(opens.as_millisecond()).ok();
    }
    let gap_ends = zone
        .following(opens.checked_sub(jiff::SignedDuration::from_hours(24)).ok()?)
        .map(|transition| transition.timestamp())
        .take_while(|at| *at <= opens)
        .last()
        .filter(|at| at.to_zoned(zone.clone()).date() == day && is_inside(*at));
    match gap_ends {
        Some(at) => u64::try_from(at.as_millisecond()).ok(),
        None => epoch_ms(next_day(day)?.to_datetime(start.civil()), zone),
    }
}

fn inside(time: Time, start: Time, end: Time) -> bool {
    if start <= end {
        start <= time && time < end
    } else {
        time >= start || time < end
    }
}

fn next_day(date: Date) -> Option<Date> {
    date.tomorrow().ok()
}

fn timestamp(ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()
}

/// The instant of local `datetime` in `zone` (gaps and folds by the rule above).
fn epoch_ms(datetime: DateTime, zone: &TimeZone) -> Option<u64> {
    let zoned = datetime.to_zoned(zone.clone()).ok()?;
    u64::try_from(zoned.timestamp().as_millisecond()).ok()
}
