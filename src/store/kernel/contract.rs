//! The kernel's contract, one case at a time, run against every backend: memory, a fresh SQLite file, and a fresh `redis-server` (when one is installed).

use std::time::Duration;

use super::{Batch, Kernel, Span, Window};
use crate::store::StoreError;

fn key(name: &str) -> String {
    format!("t:{name}")
}

async fn value(kernel: &dyn Kernel, name: &str, now: i64) -> Option<String> {
    let mut got = kernel.get(&[key(name)], now).await.unwrap();
    got.pop().unwrap().map(|r| r.value)
}

async fn version(kernel: &dyn Kernel, name: &str, now: i64) -> u64 {
    let mut got = kernel.get(&[key(name)], now).await.unwrap();
    got.pop().unwrap().map_or(0, |r| r.version)
}

/// A record is written, read back with a version, rewritten with a
/// higher one, and removed; several are read in one call, in order.
pub(crate) async fn records(kernel: &dyn Kernel) {
    assert_eq!(value(kernel, "a", 0).await, None);
    let mut batch = Batch::new(0);
    batch.put(key("a"), "one").put(key("b"), "two");
    assert_eq!(kernel.commit(batch).await.unwrap(), 0);
    let got = kernel
        .get(&[key("b"), key("missing"), key("a")], 0)
        .await
        .unwrap();
    assert_eq!(got[0].as_ref().unwrap().value, "two");
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref().unwrap().value, "one");
    let first = got[2].as_ref().unwrap().version;
    assert!(first > 0);
    assert_ne!(first, got[0].as_ref().unwrap().version);

    let mut batch = Batch::new(0);
    batch.put(key("a"), "uno");
    kernel.commit(batch).await.unwrap();
    assert_eq!(value(kernel, "a", 0).await.as_deref(), Some("uno"));
    let second = version(kernel, "a", 0).await;
    assert!(second > first);

    // A deleted record written again never gets an old version back.
    let mut batch = Batch::new(0);
    batch.delete(key("a")).delete(key("missing"));
    assert_eq!(
        kernel.commit(batch).await.unwrap(),
        1,
        "one record was there"
    );
    assert_eq!(value(kernel, "a", 0).await, None);
    let mut batch = Batch::new(0);
    batch.put(key("a"), "again");
    kernel.commit(batch).await.unwrap();
    assert!(version(kernel, "a", 0).await > second);
    // Values are kept as they are, whatever they hold.
    let odd = "引号 \" \\ \n | 0 {\"json\": [1]}";
    let mut batch = Batch::new(0);
    batch.put(key("odd"), odd);
    kernel.commit(batch).await.unwrap();
    assert_eq!(value(kernel, "odd", 0).await.as_deref(), Some(odd));
}

/// A batch whose check fails writes nothing of itself; one whose checks
/// hold writes all of itself.
pub(crate) async fn checks(kernel: &dyn Kernel) {
    let mut batch = Batch::new(0);
    batch.check(key("a"), 0).put(key("a"), "first");
    kernel.commit(batch).await.unwrap();
    let v = version(kernel, "a", 0).await;

    // Absent is version 0: a second "create" conflicts.
    let mut batch = Batch::new(0);
    batch
        .check(key("a"), 0)
        .put(key("a"), "second")
        .put(key("b"), "side")
        .index("i", "m", 1)
        .append("l", 0, "x");
    assert!(matches!(
        kernel.commit(batch).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(value(kernel, "a", 0).await.as_deref(), Some("first"));
    assert_eq!(
        value(kernel, "b", 0).await,
        None,
        "nothing of it was written"
    );
    assert_eq!(kernel.count("i").await.unwrap(), 0);
    assert!(kernel.read_log("l", 0).await.unwrap().is_empty());

    // The right version: everything happens.
    let mut batch = Batch::new(0);
    batch
        .check(key("a"), v)
        .check(key("none"), 0)
        .put(key("a"), "second")
        .put(key("b"), "side");
    kernel.commit(batch).await.unwrap();
    assert_eq!(value(kernel, "a", 0).await.as_deref(), Some("second"));
    assert_eq!(value(kernel, "b", 0).await.as_deref(), Some("side"));

    // The old version no longer does.
    let mut batch = Batch::new(0);
    batch.check(key("a"), v).delete(key("a"));
    assert!(matches!(
        kernel.commit(batch).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(value(kernel, "a", 0).await.as_deref(), Some("second"));
}

/// Of two writers that read the same version, one wins and one is told.
pub(crate) async fn races(kernel: &dyn Kernel) {
    let mut batch = Batch::new(0);
    batch.put(key("n"), "0");
    kernel.commit(batch).await.unwrap();
    for round in 0..20 {
        let v = version(kernel, "n", 0).await;
        let write = |who: &str| {
            let mut batch = Batch::new(0);
            batch
                .check(key("n"), v)
                .put(key("n"), format!("{round}{who}"));
            kernel.commit(batch)
        };
        let (a, b) = futures::join!(write("a"), write("b"));
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {a:?} {b:?}");
        assert!(matches!(a.or(b), Ok(0)));
    }
}

/// A record with an expiry is there until that second and gone from it;
/// gone, it is version 0 again; a sweep removes it for good.
pub(crate) async fn expiry(kernel: &dyn Kernel) {
    let mut batch = Batch::new(100);
    batch
        .put_until(key("e"), "brief", Some(110))
        .put(key("k"), "kept");
    kernel.commit(batch).await.unwrap();
    assert_eq!(value(kernel, "e", 109).await.as_deref(), Some("brief"));
    assert_eq!(value(kernel, "e", 110).await, None);
    assert_eq!(value(kernel, "k", 1_000_000).await.as_deref(), Some("kept"));

    // Expired counts as absent for a check, and for a delete's count.
    let mut batch = Batch::new(110);
    batch.check(key("e"), 0).delete(key("e"));
    assert_eq!(kernel.commit(batch).await.unwrap(), 0);

    let mut batch = Batch::new(100);
    batch.put_until(key("e"), "again", Some(120));
    kernel.commit(batch).await.unwrap();
    // An expiry can be lifted by writing the record again.
    let mut batch = Batch::new(100);
    batch.put_until(key("f"), "x", Some(120));
    kernel.commit(batch).await.unwrap();
    let mut batch = Batch::new(100);
    batch.put(key("f"), "for good");
    kernel.commit(batch).await.unwrap();

    kernel.sweep(120).await.unwrap();
    assert_eq!(value(kernel, "e", 100).await, None, "swept, or expired");
    assert_eq!(
        value(kernel, "f", 1_000_000).await.as_deref(),
        Some("for good")
    );
    assert_eq!(value(kernel, "k", 1_000_000).await.as_deref(), Some("kept"));
}

/// Index members come by score (ties by member), in ranges, pages and
/// reversed; a member moves when indexed again; trims count what went.
pub(crate) async fn indexes(kernel: &dyn Kernel) {
    let mut batch = Batch::new(0);
    batch
        .index("i", "c", 30)
        .index("i", "a", 10)
        .index("i", "b", 20)
        .index("i", "b2", 20)
        .index("i", "neg", -5)
        .index("other", "a", 1);
    kernel.commit(batch).await.unwrap();
    let members = |got: Vec<(String, i64)>| got.into_iter().map(|(m, _)| m).collect::<Vec<_>>();
    assert_eq!(kernel.count("i").await.unwrap(), 5);
    assert_eq!(kernel.count("nothing").await.unwrap(), 0);
    assert_eq!(
        kernel.range("i", Span::all(10)).await.unwrap(),
        vec![
            ("neg".to_string(), -5),
            ("a".to_string(), 10),
            ("b".to_string(), 20),
            ("b2".to_string(), 20),
            ("c".to_string(), 30)
        ]
    );
    assert_eq!(
        members(kernel.range("i", Span::upto(20, 10)).await.unwrap()),
        ["neg", "a", "b", "b2"]
    );
    let page = Span {
        min: 10,
        max: 30,
        offset: 1,
        limit: 2,
        rev: false,
    };
    assert_eq!(members(kernel.range("i", page).await.unwrap()), ["b", "b2"]);
    assert_eq!(
        members(kernel.range("i", Span { rev: true, ..page }).await.unwrap()),
        ["b2", "b"]
    );
    assert_eq!(
        kernel.range("i", Span::last()).await.unwrap(),
        vec![("c".to_string(), 30)]
    );
    assert!(
        kernel
            .range("nothing", Span::all(5))
            .await
            .unwrap()
            .is_empty()
    );

    let mut batch = Batch::new(0);
    batch
        .index("i", "a", 40)
        .unindex("i", "neg")
        .unindex("i", "never");
    kernel.commit(batch).await.unwrap();
    assert_eq!(
        members(kernel.range("i", Span::all(10)).await.unwrap()),
        ["b", "b2", "c", "a"]
    );
    let mut batch = Batch::new(0);
    batch.trim("i", 30).trim("nothing", 30);
    assert_eq!(kernel.commit(batch).await.unwrap(), 3);
    assert_eq!(
        kernel.range("i", Span::all(10)).await.unwrap(),
        vec![("a".to_string(), 40)]
    );
    assert_eq!(kernel.count("other").await.unwrap(), 1);
}

/// A log gives back what was appended from a time on, in order; a cut
/// counts what it removed.
pub(crate) async fn logs(kernel: &dyn Kernel) {
    let mut batch = Batch::new(0);
    batch
        .append("l", 20, "b")
        .append("l", 10, "a")
        .append("l", 20, "c")
        .append("l", 20, "b")
        .append("m", 15, "elsewhere");
    kernel.commit(batch).await.unwrap();
    assert_eq!(kernel.read_log("l", 0).await.unwrap(), ["a", "b", "c", "b"]);
    assert_eq!(kernel.read_log("l", 11).await.unwrap(), ["b", "c", "b"]);
    assert_eq!(kernel.read_log("l", 20).await.unwrap(), ["b", "c", "b"]);
    assert!(kernel.read_log("l", 21).await.unwrap().is_empty());
    assert!(kernel.read_log("nothing", 0).await.unwrap().is_empty());
    let mut batch = Batch::new(0);
    batch.cut("l", 20).cut("nothing", 20);
    assert_eq!(kernel.commit(batch).await.unwrap(), 1);
    assert_eq!(kernel.read_log("l", 0).await.unwrap(), ["b", "c", "b"]);
    assert_eq!(kernel.read_log("m", 0).await.unwrap(), ["elsewhere"]);
}

/// Sequences count from 1, each on its own.
pub(crate) async fn sequences(kernel: &dyn Kernel) {
    assert_eq!(kernel.next_id("s").await.unwrap(), 1);
    assert_eq!(kernel.next_id("s").await.unwrap(), 2);
    assert_eq!(kernel.next_id("t").await.unwrap(), 1);
    assert_eq!(kernel.next_id("s").await.unwrap(), 3);
}

/// A window holds `limit` takes per span; a take counts in every window
/// or in none.
pub(crate) async fn windows(kernel: &dyn Kernel) {
    let span = Duration::from_secs(60);
    let bot = Window {
        name: "bot".to_string(),
        limit: 3,
        span,
    };
    let chat = Window {
        name: "chat".to_string(),
        limit: 1,
        span,
    };
    assert_eq!(
        kernel.take(&[bot.clone(), chat.clone()]).await.unwrap(),
        None
    );
    let wait = kernel
        .take(&[bot.clone(), chat.clone()])
        .await
        .unwrap()
        .expect("the chat's window is full");
    assert!(wait > Duration::from_secs(50) && wait <= span, "{wait:?}");
    // The refused take counted nowhere: the bot's window has two left.
    assert_eq!(kernel.take(std::slice::from_ref(&bot)).await.unwrap(), None);
    assert_eq!(kernel.take(std::slice::from_ref(&bot)).await.unwrap(), None);
    assert!(
        kernel
            .take(std::slice::from_ref(&bot))
            .await
            .unwrap()
            .is_some()
    );
    // A short window frees again.
    let short = Window {
        name: "short".to_string(),
        limit: 1,
        span: Duration::from_millis(50),
    };
    assert_eq!(
        kernel.take(std::slice::from_ref(&short)).await.unwrap(),
        None
    );
    let wait = kernel
        .take(std::slice::from_ref(&short))
        .await
        .unwrap()
        .expect("full");
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert_eq!(
        kernel.take(std::slice::from_ref(&short)).await.unwrap(),
        None
    );
}

/// Every contract test runs under this bound: a wedged backend fails the
/// test instead of hanging it.
pub(crate) async fn within<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the kernel answered within 30 s")
}

/// The contract's cases as tests, for a backend's test module:
/// `cases!(make)` where `make` gives `(guard, kernel)`, the guard kept
/// alive for the test (a temporary file, a server); or `cases!(optional:
/// make)` where `make` gives an `Option` of them, `None` when the backend
/// cannot run here (it said why).
macro_rules! cases {
    ($($case:ident),* ; $make:expr) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((_guard, kernel)) = $make else {
                    return;
                };
                $crate::store::kernel::contract::within(
                    $crate::store::kernel::contract::$case(&kernel),
                )
                .await;
            }
        )*
    };
    (optional: $make:expr) => {
        $crate::store::kernel::contract::cases!(
            records, checks, races, expiry, indexes, logs, sequences, windows; $make
        );
    };
    ($make:expr) => {
        $crate::store::kernel::contract::cases!(optional: Some($make));
    };
}
pub(crate) use cases;

mod memory {
    super::cases!(((), crate::store::kernel::memory::MemoryKernel::default()));
}
