//! The SQLite kernel's tests: the contract every kernel keeps, then what only a file has (private modes, reopening, the hold, synced and failed batches, another process's lock).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::SqliteKernel;
use crate::store::StoreError;
use crate::store::kernel::contract::within;
use crate::store::kernel::{Batch, Kernel, Span};

/// A database file of its own for one test, removed afterwards with its
/// journal files and its hold file.
struct TempFile(PathBuf);

/// Numbers the files of one test run, so that no two tests share one.
static FILES: AtomicUsize = AtomicUsize::new(0);

impl TempFile {
    fn new(name: &str) -> Self {
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "icp-sms-doctor-kernel-{}-{name}-{n}.db",
            std::process::id()
        ));
        let file = TempFile(path);
        file.clean();
        file
    }

    fn clean(&self) {
        for suffix in ["", "-wal", "-shm", "-journal", ".poller"] {
            let _ = fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.clean();
    }
}

mod contract {
    use super::{SqliteKernel, TempFile};

    crate::store::kernel::contract::cases!({
        let file = TempFile::new("contract");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        (file, kernel)
    });
}

async fn value(kernel: &dyn Kernel, key: &str) -> Option<String> {
    let mut got = kernel.get(&[key.to_string()], 0).await.unwrap();
    got.pop().unwrap().map(|r| r.value)
}

/// Every row of every table of the file, read on a connection of its
/// own: what a batch must leave as it was when it fails.
fn dump(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut rows = Vec::new();
    for table in ["records", "index_members", "log_values", "sequences"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        let mut got = stmt.query([]).unwrap();
        while let Some(row) = got.next().unwrap() {
            let cells: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", cells.join(" | ")));
        }
    }
    rows
}

/// The kernel's folder is the bot's alone (0700) and its files too (0600),
/// whatever the umask lets through: they hold user ids and names.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_kernel_files_are_private_to_the_bot() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "icp-sms-doctor-kernel-private-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    let path = dir.join("data").join("kernel.db");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    within(async {
        let kernel = SqliteKernel::open(&path).unwrap();
        let mut batch = Batch::new(0);
        batch.put("k", "v");
        kernel.commit(batch).await.unwrap();
        kernel.hold().await.unwrap();
        assert_eq!(mode(&dir.join("data")), 0o700);
        for suffix in ["", "-wal", "-shm", ".poller"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    })
    .await;
    // A file left readable by an older version is closed up on opening.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteKernel::open(&path).unwrap());
    assert_eq!(mode(&path), 0o600);
    let _ = fs::remove_dir_all(&dir);
}

/// A folder that exists and lets others in is closed up to 0700 when the
/// kernel opens a file in it (the README's promise for `data/`); a shared
/// folder with the sticky bit, as /tmp is, is left as it is.
#[cfg(unix)]
#[test]
fn sqlite_kernel_closes_up_an_open_folder_but_not_a_shared_one() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!(
        "icp-sms-doctor-kernel-folders-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&root);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (name, before, after) in [
        ("open", 0o777, 0o700),
        ("group", 0o750, 0o700),
        ("private", 0o700, 0o700),
        ("shared", 0o1777, 0o1777),
    ] {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(before)).unwrap();
        drop(SqliteKernel::open(&dir.join("kernel.db")).unwrap());
        assert_eq!(mode(&dir), after, "{name}: {:o}", mode(&dir));
    }
    let _ = fs::remove_dir_all(&root);
}

/// What was written is there after the file is closed and opened again,
/// and the counters go on from where they were: no version or id is given
/// a second time.
#[tokio::test]
async fn sqlite_kernel_data_survives_reopening_the_file() {
    within(async {
        let file = TempFile::new("reopen");
        let old = {
            let kernel = SqliteKernel::open(&file.0).unwrap();
            let mut batch = Batch::new(0);
            batch
                .put("kept", "value")
                .put("gone", "soon")
                .index("i", "m", 5)
                .append("l", 1, "entry");
            kernel.commit(batch).await.unwrap();
            let mut batch = Batch::new(0);
            batch.delete("gone");
            kernel.commit(batch).await.unwrap();
            assert_eq!(kernel.next_id("s").await.unwrap(), 1);
            kernel.get(&["kept".to_string()], 0).await.unwrap()[0]
                .clone()
                .unwrap()
                .version
        };
        let kernel = SqliteKernel::open(&file.0).unwrap();
        assert_eq!(value(&kernel, "kept").await.as_deref(), Some("value"));
        assert_eq!(
            kernel.range("i", Span::all(10)).await.unwrap(),
            vec![("m".to_string(), 5)]
        );
        assert_eq!(kernel.read_log("l", 0).await.unwrap(), ["entry"]);
        assert_eq!(kernel.next_id("s").await.unwrap(), 2);
        let mut batch = Batch::new(0);
        batch.put("gone", "back");
        kernel.commit(batch).await.unwrap();
        let got = kernel.get(&["gone".to_string()], 0).await.unwrap();
        // Versions go on from the highest one stored.
        assert!(got[0].as_ref().unwrap().version > old);
    })
    .await;
}

/// One process holds the file: a second handle on it is refused while
/// the first lives, and let in once it is gone.
#[tokio::test]
async fn sqlite_kernel_a_second_hold_is_refused() {
    within(async {
        let file = TempFile::new("hold");
        let first = SqliteKernel::open(&file.0).unwrap();
        first.hold().await.unwrap();
        // Holding again, from the same kernel or a clone, is no conflict.
        first.hold().await.unwrap();
        let clone = first.clone();
        clone.hold().await.unwrap();

        let second = SqliteKernel::open(&file.0).unwrap();
        match second.hold().await {
            Err(StoreError::InUse(path)) => assert_eq!(path, file.0),
            other => panic!("a second hold was not refused: {other:?}"),
        }
        drop(first);
        assert!(
            matches!(second.hold().await, Err(StoreError::InUse(_))),
            "the clone still holds the file"
        );
        drop(clone);
        second.hold().await.unwrap();
    })
    .await;
}

/// The hold is on the database itself, not its name: a second bot that
/// reaches the same file through a hard link in another folder is refused
/// as one on the same path would be, before SQLite opens the file by the
/// other name (whose log would be another file).
#[cfg(unix)]
#[tokio::test]
async fn sqlite_kernel_a_hold_through_a_hard_link_is_refused() {
    within(async {
        let file = TempFile::new("linked");
        let first = SqliteKernel::open_held(&file.0).unwrap();
        let mut batch = Batch::new(0);
        batch.put("k", "v");
        first.commit(batch).await.unwrap();
        let dir =
            std::env::temp_dir().join(format!("icp-sms-doctor-kernel-link-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let link = dir.join("other-name.db");
        fs::hard_link(&file.0, &link).unwrap();

        match SqliteKernel::open_held(&link) {
            Err(StoreError::InUse(path)) => assert_eq!(path, link),
            Err(e) => panic!("a hold through a hard link failed otherwise: {e}"),
            Ok(_) => panic!("a hold through a hard link was not refused"),
        }
        // By the first name too, held from `open` on or only later.
        assert!(matches!(
            SqliteKernel::open_held(&file.0),
            Err(StoreError::InUse(_))
        ));
        // Once the first is gone, the file is free by either name, and
        // holds what was written.
        drop(first);
        let second = SqliteKernel::open_held(&link).unwrap();
        assert_eq!(value(&second, "k").await.as_deref(), Some("v"));
        drop(second);
        let _ = fs::remove_dir_all(&dir);
    })
    .await;
}

/// A batch that must be durable commits, apart from the async workers,
/// and leaves the connection's later commits as quick as before.
#[tokio::test]
async fn sqlite_kernel_a_synced_batch_commits() {
    within(async {
        let file = TempFile::new("sync");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        let normal = kernel.synchronous().unwrap();
        assert_eq!(normal, 1, "NORMAL");
        let mut batch = Batch::new(0);
        batch.put("claim", "mine").index("claims", "claim", 1);
        batch.sync = true;
        assert_eq!(kernel.commit(batch).await.unwrap(), 0);
        assert_eq!(value(&kernel, "claim").await.as_deref(), Some("mine"));
        assert_eq!(kernel.synchronous().unwrap(), normal);

        // A synced batch whose check fails conflicts like any other.
        let mut batch = Batch::new(0);
        batch.check("claim", 0).put("claim", "theirs");
        batch.sync = true;
        assert!(matches!(
            kernel.commit(batch).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(value(&kernel, "claim").await.as_deref(), Some("mine"));
        assert_eq!(kernel.synchronous().unwrap(), normal);
    })
    .await;
}

/// A batch whose check fails leaves every table of the file as it was,
/// the version counter included.
#[tokio::test]
async fn sqlite_kernel_a_failed_batch_leaves_the_file_as_it_was() {
    within(async {
        let file = TempFile::new("failed");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        let mut batch = Batch::new(0);
        batch
            .put("a", "one")
            .put("b", "two")
            .index("i", "m", 1)
            .append("l", 1, "x");
        kernel.commit(batch).await.unwrap();
        kernel.next_id("s").await.unwrap();
        let before = dump(&file.0);
        assert!(before.len() >= 5, "{before:?}");

        // The failing check comes last, after a passing one.
        let mut batch = Batch::new(0);
        batch
            .check(
                "a",
                kernel.get(&["a".to_string()], 0).await.unwrap()[0]
                    .as_ref()
                    .unwrap()
                    .version,
            )
            .check("b", 0)
            .put("a", "changed")
            .put("new", "value")
            .delete("b")
            .index("i", "n", 2)
            .unindex("i", "m")
            .trim("i", 10)
            .append("l", 2, "y")
            .cut("l", 10);
        assert!(matches!(
            kernel.commit(batch).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(dump(&file.0), before);
    })
    .await;
}

/// `sweep` removes the records expired by then, counts them, and leaves
/// the rest.
#[tokio::test]
async fn sqlite_kernel_a_sweep_counts_what_it_removed() {
    within(async {
        let file = TempFile::new("sweep");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        let mut batch = Batch::new(0);
        batch
            .put_until("a", "x", Some(10))
            .put_until("b", "x", Some(20))
            .put_until("c", "x", Some(30))
            .put("d", "x");
        kernel.commit(batch).await.unwrap();
        assert_eq!(kernel.sweep(20).await.unwrap(), 2);
        assert_eq!(kernel.sweep(20).await.unwrap(), 0);
        let records: Vec<String> = dump(&file.0)
            .into_iter()
            .filter(|row| row.starts_with("records:"))
            .collect();
        assert_eq!(records.len(), 2, "{records:?}");
    })
    .await;
}

/// Another process holding the file's write lock for a while: a read goes
/// on, and a batch waits for the lock (off the async workers) and then
/// commits. (Calls made meanwhile queue behind that batch.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kernel_a_batch_waits_out_another_process_lock() {
    within(async {
        let file = TempFile::new("locked");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        let mut batch = Batch::new(0);
        batch.put("theirs", "there");
        kernel.commit(batch).await.unwrap();
        let other = rusqlite::Connection::open(&file.0).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Reading does not wait for the other process's lock.
        assert_eq!(value(&kernel, "theirs").await.as_deref(), Some("there"));
        let writer = {
            let kernel = kernel.clone();
            tokio::spawn(async move {
                let mut batch = Batch::new(0);
                batch.check("mine", 0).put("mine", "here");
                kernel.commit(batch).await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the batch did not wait for the lock");
        other.execute_batch("COMMIT").unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(value(&kernel, "mine").await.as_deref(), Some("here"));
    })
    .await;
}

/// Batches committed at the same moment are written in one transaction,
/// each as if alone and in turn: a failed check fails its own batch only,
/// and a batch that checks what an earlier one of the group wrote sees
/// that write.
#[tokio::test]
async fn batches_committed_together_keep_their_own_checks_and_answers() {
    within(async {
        let file = TempFile::new("group");
        let kernel = SqliteKernel::open(&file.0).unwrap();
        let mut first = Batch::new(1);
        first.put("held", "before");
        kernel.commit(first).await.unwrap();
        let held = kernel.get(&["held".to_string()], 1).await.unwrap()[0]
            .clone()
            .unwrap()
            .version;
        let mut batches = Vec::new();
        for i in 0..5 {
            let mut batch = Batch::new(1);
            batch
                .check(format!("new{i}"), 0)
                .put(format!("new{i}"), "v");
            batches.push(batch);
        }
        // A stale check: fails, and writes nothing.
        let mut stale = Batch::new(1);
        stale.check("held", held + 100).put("stale", "v");
        batches.push(stale);
        // Takes `held` from the version it had: the first to do so wins,
        // the second sees the first's write and fails.
        for n in 0..2 {
            let mut take = Batch::new(1);
            take.check("held", held)
                .put("held", format!("taken by {n}"));
            batches.push(take);
        }
        // On one thread, the first commit leads and lets the others queue:
        // all eight go in one group.
        let groups = kernel.groups();
        let answers =
            futures::future::join_all(batches.into_iter().map(|b| kernel.commit(b))).await;
        assert_eq!(kernel.groups(), groups + 1);
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, true, true, true, true, false, true, false]);
        assert!(matches!(answers[5], Err(StoreError::Conflict)));
        assert!(matches!(answers[7], Err(StoreError::Conflict)));
        for i in 0..5 {
            assert_eq!(
                value(&kernel, &format!("new{i}")).await.as_deref(),
                Some("v")
            );
        }
        assert_eq!(value(&kernel, "stale").await, None);
        assert_eq!(value(&kernel, "held").await.as_deref(), Some("taken by 0"));
        // Every write of the group has a version of its own.
        let keys: Vec<String> = (0..5).map(|i| format!("new{i}")).collect();
        let mut versions: Vec<u64> = kernel
            .get(&keys, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        assert_eq!(versions.len(), 5);
    })
    .await;
}
