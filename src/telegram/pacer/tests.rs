//! The pacer's behaviour, with Telegram's limits run fast.

use super::*;

/// Telegram's limits, with a second of 20 ms so the tests run fast;
/// they check that pacing is never faster than the limits (the machine
/// may make it slower, never faster).
const UNIT: Duration = Duration::from_millis(20);

fn limits() -> Limits {
    Limits {
        second: UNIT,
        ..Limits::default()
    }
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("granted within 20 s")
}

/// Takes turns for `n` tickets of one chat, each request done at once,
/// and returns when each was granted.
async fn grant_times(pacer: &Pacer, chat: i64, n: usize) -> Vec<Instant> {
    let tickets: Vec<Ticket> = (0..n)
        .map(|_| pacer.submit(chat, Priority::Person, None))
        .collect();
    let mut times = Vec::new();
    for mut ticket in tickets {
        assert_eq!(within(ticket.turn()).await, Turn::Go);
        times.push(Instant::now());
    }
    times
}

/// Whether no `max + 1` of `times` fall within `span`.
fn never_more_than(times: &[Instant], max: usize, span: Duration) -> bool {
    times.windows(max + 1).all(|w| w[max] - w[0] >= span)
}

use std::future::Future;

#[tokio::test]
async fn a_private_chat_gets_a_short_burst_then_about_one_a_second() {
    let pacer = Pacer::spawn(limits());
    let times = grant_times(&pacer, 7, 7).await;
    assert!(never_more_than(&times, 3, UNIT * 3));
}

#[tokio::test]
async fn a_group_gets_one_a_second_and_twenty_a_minute() {
    let pacer = Pacer::spawn(limits());
    let times = grant_times(&pacer, -100, 22).await;
    assert!(never_more_than(&times, 1, UNIT));
    assert!(never_more_than(&times, 20, UNIT * 60));
}

#[tokio::test]
async fn the_bot_as_a_whole_stays_within_its_per_second_limit() {
    let pacer = Pacer::spawn(limits());
    let tickets: Vec<Ticket> = (1..=75)
        .map(|chat| pacer.submit(chat, Priority::Person, None))
        .collect();
    let mut times = Vec::new();
    for mut ticket in tickets {
        assert_eq!(within(ticket.turn()).await, Turn::Go);
        times.push(Instant::now());
    }
    times.sort();
    assert!(never_more_than(&times, 30, UNIT));
}

#[tokio::test]
async fn a_persons_request_goes_before_background_work() {
    let pacer = Pacer::spawn(Limits {
        per_second: 1,
        ..limits()
    });
    // Keep the budget busy so the order of the rest shows.
    let mut first = pacer.submit(1, Priority::Person, None);
    assert_eq!(within(first.turn()).await, Turn::Go);
    let mut background = pacer.submit(2, Priority::Background, None);
    let mut person = pacer.submit(3, Priority::Person, None);
    drop(first);
    let winner = within(async {
        tokio::select! {
            _ = background.turn() => "background",
            _ = person.turn() => "person",
        }
    })
    .await;
    assert_eq!(winner, "person");
}

#[tokio::test]
async fn only_the_newest_edit_of_a_waiting_message_goes_out() {
    let pacer = Pacer::spawn(limits());
    let mut out = pacer.submit(5, Priority::Person, None);
    assert_eq!(within(out.turn()).await, Turn::Go);
    let mut first = pacer.submit(5, Priority::Person, Some(42));
    let mut other = pacer.submit(5, Priority::Person, Some(43));
    let mut second = pacer.submit(5, Priority::Person, Some(42));
    assert_eq!(within(first.turn()).await, Turn::Superseded);
    drop(out);
    // Only the newest edit of 42 goes out, after what came between.
    assert_eq!(within(other.turn()).await, Turn::Go);
    drop(other);
    assert_eq!(within(second.turn()).await, Turn::Go);
}

#[tokio::test]
async fn a_429_pauses_the_chat_and_the_request_goes_first_after_it() {
    let pacer = Pacer::spawn(limits());
    let mut a = pacer.submit(9, Priority::Person, None);
    let mut b = pacer.submit(9, Priority::Person, None);
    assert_eq!(within(a.turn()).await, Turn::Go);
    let refused = Instant::now();
    a.retry_after(UNIT * 10);
    // Other chats go on meanwhile.
    let mut elsewhere = pacer.submit(10, Priority::Person, None);
    assert_eq!(within(elsewhere.turn()).await, Turn::Go);
    assert_eq!(within(a.turn()).await, Turn::Go);
    assert!(Instant::now() - refused >= UNIT * 10);
    drop(a);
    assert_eq!(within(b.turn()).await, Turn::Go);
}

#[tokio::test]
async fn an_edit_refused_with_a_429_yields_to_a_newer_edit_of_its_message() {
    let pacer = Pacer::spawn(limits());
    let mut older = pacer.submit(6, Priority::Person, Some(7));
    assert_eq!(within(older.turn()).await, Turn::Go);
    let mut newer = pacer.submit(6, Priority::Person, Some(7));
    older.retry_after(UNIT);
    assert_eq!(within(older.turn()).await, Turn::Superseded);
    drop(older);
    assert_eq!(within(newer.turn()).await, Turn::Go);
}

#[tokio::test]
async fn drain_waits_for_the_queue_then_closes_what_is_left() {
    let pacer = Pacer::spawn(Limits {
        group_per_minute: 1,
        second: Duration::from_secs(1),
        ..limits()
    });
    let mut sent = pacer.submit(-5, Priority::Person, None);
    let mut stuck = pacer.submit(-5, Priority::Person, None);
    assert_eq!(within(sent.turn()).await, Turn::Go);
    drop(sent);
    // The second may go only a minute later; the grace is shorter.
    assert_eq!(pacer.drain(Duration::from_millis(200)).await, 1);
    assert_eq!(within(stuck.turn()).await, Turn::Closed);
    let mut late = pacer.submit(-5, Priority::Person, None);
    assert_eq!(within(late.turn()).await, Turn::Closed);
}

#[tokio::test]
async fn no_more_than_a_bounded_number_of_requests_are_out_at_once() {
    let pacer = Pacer::spawn(Limits {
        per_second: 1_000_000,
        ..limits()
    });
    let mut tickets: Vec<Ticket> = (1..=(MAX_IN_FLIGHT as i64 + 1))
        .map(|chat| pacer.submit(chat, Priority::Person, None))
        .collect();
    let mut last = tickets.pop().expect("one more than the cap");
    for ticket in &mut tickets {
        assert_eq!(within(ticket.turn()).await, Turn::Go);
    }
    // All out: the last waits until one answer is back.
    let waiting = tokio::time::timeout(UNIT * 5, last.turn()).await;
    assert!(waiting.is_err(), "granted over the cap");
    tickets.pop();
    assert_eq!(within(last.turn()).await, Turn::Go);
}

#[tokio::test]
async fn a_newer_edit_behind_other_messages_goes_last() {
    let pacer = Pacer::spawn(limits());
    let mut out = pacer.submit(4, Priority::Person, None);
    assert_eq!(within(out.turn()).await, Turn::Go);
    let mut old_edit = pacer.submit(4, Priority::Person, Some(1));
    let mut message = pacer.submit(4, Priority::Person, None);
    let mut new_edit = pacer.submit(4, Priority::Person, Some(1));
    assert_eq!(within(old_edit.turn()).await, Turn::Superseded);
    drop(out);
    // The message made in between goes first, the newest edit after it.
    assert_eq!(within(message.turn()).await, Turn::Go);
    drop(message);
    assert_eq!(within(new_edit.turn()).await, Turn::Go);
}

#[tokio::test]
async fn a_turn_given_but_never_taken_frees_the_lane() {
    let pacer = Pacer::spawn(limits());
    let first = pacer.submit(3, Priority::Person, None);
    let mut second = pacer.submit(3, Priority::Person, None);
    // Let the pacer grant the first, then drop it unclaimed.
    tokio::time::sleep(UNIT).await;
    drop(first);
    assert_eq!(within(second.turn()).await, Turn::Go);
}

#[tokio::test]
async fn what_waits_for_a_person_gone_elsewhere_is_taken_back() {
    let pacer = Pacer::spawn(limits());
    let mut out = pacer.submit_for(-8, Priority::Person, None, 1);
    assert_eq!(within(out.turn()).await, Turn::Go);
    let mut theirs = pacer.submit_for(-8, Priority::Person, None, 1);
    let mut others = pacer.submit_for(-8, Priority::Person, None, 2);
    assert_eq!(pacer.withdraw_person(-8, 1), 1);
    assert_eq!(within(theirs.turn()).await, Turn::Superseded);
    drop(out);
    assert_eq!(within(others.turn()).await, Turn::Go);
}

#[tokio::test]
async fn a_request_with_nothing_ahead_is_let_go_at_once() {
    let pacer = Pacer::spawn(limits());
    let mut ticket = pacer.submit(11, Priority::Person, None);
    // Given in `submit` itself: the turn is there without a wait.
    assert_eq!(
        futures::FutureExt::now_or_never(ticket.turn()),
        Some(Turn::Go)
    );
}

#[tokio::test]
async fn a_turn_put_back_before_it_was_taken_leaves_no_budget_behind() {
    let pacer = Pacer::spawn(Limits {
        per_second: 1,
        ..limits()
    });
    // Given at once in `submit`, then put back untaken.
    let mut first = pacer.submit(21, Priority::Person, None);
    first.again(Duration::ZERO);
    assert_eq!(within(first.turn()).await, Turn::Go);
    drop(first);
    tokio::time::sleep(UNIT * 3).await;
    // Had the untaken turn stayed counted as out, nothing more could go.
    let mut next = pacer.submit(22, Priority::Person, None);
    assert_eq!(within(next.turn()).await, Turn::Go);
}

#[tokio::test]
async fn quiet_chats_are_forgotten() {
    let pacer = Pacer::spawn(limits());
    for chat in 1..=100 {
        let mut t = pacer.submit(chat, Priority::Person, None);
        assert_eq!(within(t.turn()).await, Turn::Go);
    }
    tokio::time::sleep(UNIT * 4).await;
    // Any pass forgets the lanes whose windows have gone quiet.
    let mut t = pacer.submit(1000, Priority::Person, None);
    assert_eq!(within(t.turn()).await, Turn::Go);
    drop(t);
    let lanes = pacer.lock().lanes.len();
    assert!(lanes <= 1, "{lanes} lanes kept");
}
