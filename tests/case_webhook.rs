//! The case webhook end to end: a case driven through the fake Bot API reaches a receiver on 127.0.0.1 as signed JSON, in order; a receiver answering 500, or down for an hour, gets every event once it takes them; events queued before a crash or a stop are posted after the restart; and the docs' Python receiver verifies what the bot signs.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use icp_sms_doctor::app::{CaseWebhook, Settings};
use icp_sms_doctor::clock::{Clock, Instant};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::store::Store;
use icp_sms_doctor::telegram::Options;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::Value;
use tokio::sync::watch;

use crate::bot::ALICE;
use crate::cases::{ANN, STAFF, ask_for_a_person, press_on, sent_to, staffed};
use crate::http::get;
use crate::reminders::T0;
use crate::scene::{Scene, db_path, memory, options, within};
use crate::support::real_tree;
use crate::webhook::free_address;

/// The secret the bot signs with.
pub(crate) const SECRET: &str = "a-secret-of-32-bytes-for-tests!!";

/// The signature header's value for `body` signed with `secret`.
fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `header` is the signature of `body` with `secret`, checked as
/// a receiver should: the hex decoded, compared in constant time.
fn verifies(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let Some(tag) = bytes else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// How the receiver answers one post.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    Status(u16),
    /// Never: the post hangs until the bot gives up on it.
    Hang,
}

/// One post as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn id(&self) -> String {
        self.json()["id"].as_str().expect("an id").to_string()
    }

    pub(crate) fn kind(&self) -> String {
        self.json()["type"].as_str().expect("a type").to_string()
    }
}

#[derive(Default)]
struct Seen {
    hits: Vec<Hit>,
    /// Answers to give, in order; `otherwise` once they run out.
    script: VecDeque<Answer>,
    otherwise: Option<u16>,
}

/// A webhook receiver on 127.0.0.1 that records every post and answers as
/// scripted; every answer closes its connection, so a receiver stopped is
/// one the bot cannot reach.
#[derive(Clone)]
pub(crate) struct Receiver {
    address: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    count: watch::Sender<usize>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Receiver {
    pub(crate) async fn start(script: &[Answer]) -> Receiver {
        Receiver::start_on(free_address(), script).await
    }

    /// A receiver on `address`, which must be free.
    async fn start_on(address: SocketAddr, script: &[Answer]) -> Receiver {
        let receiver = Receiver {
            address,
            seen: Arc::new(Mutex::new(Seen {
                hits: Vec::new(),
                script: script.iter().copied().collect(),
                otherwise: None,
            })),
            count: watch::Sender::new(0),
            task: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("the receiver's port is free");
        let router = Router::new().fallback(take).with_state(receiver.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the receiver serves");
        });
        *receiver.task.lock().unwrap() = Some(task);
        receiver
    }

    /// Stops listening: the bot's next post is refused.
    fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Answers every post from now on with `status` (200 with `None`).
    fn answer_all(&self, status: Option<u16>) {
        self.seen.lock().unwrap().otherwise = status;
    }

    pub(crate) fn url(&self) -> url::Url {
        format!("http://{}/hooks/icp", self.address)
            .parse()
            .expect("a URL")
    }

    fn hits(&self) -> Vec<Hit> {
        self.seen.lock().unwrap().hits.clone()
    }

    /// Waits until the receiver has had `n` posts; returns them all.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Hit> {
        self.count
            .subscribe()
            .wait_for(|count| *count >= n)
            .await
            .expect("the receiver lives");
        self.hits()
    }
}

async fn take(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let answer = {
        let mut seen = receiver.seen.lock().unwrap();
        seen.hits.push(Hit { headers, body });
        let otherwise = Answer::Status(seen.otherwise.unwrap_or(200));
        seen.script.pop_front().unwrap_or(otherwise)
    };
    receiver.count.send_modify(|n| *n += 1);
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang => std::future::pending().await,
    };
    (
        StatusCode::from_u16(status).expect("a status"),
        [(header::CONNECTION, "close")],
    )
}

/// A staffed bot whose case events go to `url`.
pub(crate) fn hooked(url: url::Url) -> Settings {
    Settings {
        case_webhook: Some(CaseWebhook::new(url, SECRET.to_string())),
        ..staffed()
    }
}

/// The bot on `clock` and `store`, with its case events posted to `url`
/// and /metrics served at the address returned.
async fn scene(store: Store, clock: Clock, url: url::Url) -> (Scene, SocketAddr) {
    let metrics = free_address();
    let options = Options {
        metrics_listen: Some(metrics),
        ..options()
    };
    let tree = Arc::new(real_tree());
    let scene = Scene::with_options(tree, store, clock, hooked(url), options).await;
    scene.api.set_member(STAFF, ANN.id, "member");
    let metrics = scene.metrics_listen().expect("a metrics address");
    (scene, metrics)
}

/// Alice asks for a person and agrees; returns the case's message in the
/// staff chat once she is told the case is open (its event is queued by
/// then).
async fn open_case(scene: &Scene) -> Value {
    let ui = real_tree().ui().clone();
    let api = &scene.api;
    let consent = ask_for_a_person(api, &ALICE, &ALICE.private_chat()).await;
    press_on(
        api,
        &ALICE,
        &consent,
        ui.button(UiButton::HandoffConfirm, Lang::Zh),
    );
    let header = sent_to(api, STAFF, "工单 #").await;
    let opened = ui.text(UiText::HandoffOpened, Lang::Zh);
    let number = header_number(&header);
    sent_to(api, ALICE.id as i64, &opened.replace("{case}", &number)).await;
    header
}

/// The case's number, as its message in the staff chat gives it.
fn header_number(header: &Value) -> String {
    let text = header["text"].as_str().unwrap_or_default();
    let (_, after) = text.split_once('#').expect("a case number");
    after.chars().take_while(char::is_ascii_digit).collect()
}

/// A counter or gauge of /metrics at `address`.
async fn figure(address: SocketAddr, name: &str) -> f64 {
    let (status, text) = get(address, "/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Moves the clock and waits for the courier's look at the queue then.
async fn advance(scene: &Scene, secs: i64) {
    scene.clock.advance(secs);
    settle(scene, scene.clock.now()).await;
}

async fn settle(scene: &Scene, at: Instant) {
    scene
        .bot()
        .case_events_settled()
        .expect("a courier runs")
        .wait_for(|done| *done >= at)
        .await
        .expect("the courier runs");
}

#[tokio::test]
async fn a_case_from_open_to_close_reaches_the_receiver_signed_and_in_order() {
    within(async {
        let ui = real_tree().ui().clone();
        let receiver = Receiver::start(&[]).await;
        let (scene, metrics) = scene(memory(), Clock::manual(T0), receiver.url()).await;
        let api = scene.api.clone();
        let alice = ALICE.id as i64;
        let header = open_case(&scene).await;
        // Each step's event reaches the receiver before the next step, so
        // the order is the steps' (one person's steps are handled in turn,
        // but the person's and the staff's side by side).
        receiver.wait_for(1).await;
        api.reply_as(&ANN, &header, "请问申请提交到哪一步了？");
        sent_to(&api, alice, "请问申请提交到哪一步了？").await;
        receiver.wait_for(2).await;
        api.send_as(&ALICE, &ALICE.private_chat(), "接入商说还在审核", None);
        sent_to(&api, STAFF, "接入商说还在审核").await;
        receiver.wait_for(3).await;
        // What is not relayed is no event either.
        api.send_as(&ALICE, &ALICE.private_chat(), "手机号是 13812345678", None);
        sent_to(&api, alice, ui.text(UiText::RelayPersonalData, Lang::Zh)).await;
        press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, Lang::Zh));
        let taken = ui
            .text(UiText::CaseTaken, Lang::Zh)
            .replace("{staff}", "Ann");
        sent_to(&api, alice, &taken).await;
        let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
        press_on(
            &api,
            &ANN,
            &header,
            ui.button(UiButton::CaseClose, Lang::Zh),
        );
        sent_to(&api, alice, ui.text(UiText::CaseClosedByStaff, Lang::Zh)).await;

        let hits = receiver.wait_for(5).await;
        let kinds: Vec<String> = hits.iter().map(Hit::kind).collect();
        assert_eq!(
            kinds,
            [
                "case.opened",
                "case.message",
                "case.message",
                "case.taken",
                "case.closed"
            ]
        );
        let mut ids = Vec::new();
        for hit in &hits {
            let body = hit.json();
            assert_eq!(body["schema"], 1);
            assert_eq!(hit.header("content-type"), "application/json");
            assert_eq!(hit.header("x-event-id"), body["id"].as_str().unwrap());
            assert_eq!(hit.header("x-event-type"), body["type"].as_str().unwrap());
            let signed = hit.header("x-signature-256");
            assert_eq!(signed, signature(SECRET, &hit.body));
            assert!(verifies(SECRET, &hit.body, signed), "{signed}");
            // A receiver with another secret, or a body changed on the way,
            // fails the check.
            assert!(!verifies(
                "another-secret-of-32-bytes-long!",
                &hit.body,
                signed
            ));
            let mut forged = hit.body.to_vec();
            let near_end = forged.len() - 2;
            forged[near_end] ^= 1;
            assert!(!verifies(SECRET, &forged, signed));
            assert_eq!(body["case"]["id"], 1);
            assert_eq!(body["case"]["person"]["id"], ALICE.id);
            assert_eq!(body["case"]["person"]["name"], "Alice");
            assert_eq!(body["case"]["node"], "nr_not_submitted");
            assert!(body["at"].as_str().unwrap().ends_with('Z'));
            assert!(!String::from_utf8_lossy(&hit.body).contains("13812345678"));
            ids.push(hit.id());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "each event has an id of its own");
        let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();
        assert_eq!(bodies[0]["case"]["status"], "open");
        assert_eq!(bodies[0]["data"], serde_json::json!({}));
        assert_eq!(
            bodies[1]["data"],
            serde_json::json!({"side": "staff", "by": "Ann", "text": "请问申请提交到哪一步了？"})
        );
        assert_eq!(
            bodies[2]["data"],
            serde_json::json!({"side": "person", "by": "person", "text": "接入商说还在审核"})
        );
        assert_eq!(bodies[3]["case"]["status"], "taken");
        assert_eq!(bodies[3]["case"]["taken_by"], "Ann");
        assert_eq!(
            bodies[3]["data"],
            serde_json::json!({"side": "staff", "by": "Ann"})
        );
        assert_eq!(bodies[4]["case"]["status"], "closed");
        assert_eq!(
            bodies[4]["data"],
            serde_json::json!({"side": "staff", "by": "Ann"})
        );

        // A look begun after the last post: its answer has been read.
        advance(&scene, 1).await;
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            5.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_retried_total").await,
            0.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            0.0
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_receiver_answering_500_gets_the_same_event_until_it_takes_it() {
    within(async {
        let receiver = Receiver::start(&[
            Answer::Status(500),
            Answer::Status(503),
            Answer::Status(429),
        ])
        .await;
        let (scene, metrics) = scene(memory(), Clock::manual(T0), receiver.url()).await;
        open_case(&scene).await;
        receiver.wait_for(1).await;
        // Tried again after 5 s, then 10, then 20: nothing before.
        for (pause, n) in [(5, 2), (10, 3), (20, 4)] {
            advance(&scene, pause - 1).await;
            assert_eq!(receiver.hits().len(), n - 1, "not before {pause} s");
            scene.clock.advance(1);
            receiver.wait_for(n).await;
        }
        settle(&scene, scene.clock.now()).await;
        let hits = receiver.hits();
        assert_eq!(hits.len(), 4);
        assert!(
            hits.iter().all(|h| h.body == hits[0].body),
            "the same bytes each time"
        );
        assert!(hits.iter().all(|h| h.id() == hits[0].id()));
        assert_eq!(hits[0].kind(), "case.opened");
        // Taken: nothing more is posted.
        advance(&scene, 3600).await;
        assert_eq!(receiver.hits().len(), 4);
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            1.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_retried_total").await,
            3.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_given_up_total").await,
            0.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            0.0
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_still_failing_a_day_after_it_was_queued_is_given_up_and_counted() {
    within(async {
        let receiver = Receiver::start(&[]).await;
        receiver.answer_all(Some(500));
        let (scene, metrics) = scene(memory(), Clock::manual(T0), receiver.url()).await;
        let header = open_case(&scene).await;
        receiver.wait_for(1).await;
        let given_up = "icp_sms_doctor_case_events_given_up_total";
        // Tried all day, every ten minutes at most.
        while scene.clock.now() < T0 + 24 * 3600 - 600 {
            advance(&scene, 600).await;
        }
        assert_eq!(figure(metrics, given_up).await, 0.0);
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            1.0
        );
        let tries = receiver.hits().len();
        assert!((140..=160).contains(&tries), "{tries} tries in a day");
        // Past the day, the next failed try gives it up.
        advance(&scene, 600).await;
        advance(&scene, 600).await;
        assert_eq!(figure(metrics, given_up).await, 1.0);
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            0.0
        );
        let hits = receiver.hits();
        assert!(hits.iter().all(|h| h.kind() == "case.opened"));
        // What comes next is posted as usual.
        receiver.answer_all(None);
        scene.api.reply_as(&ANN, &header, "抱歉久等");
        let hits = receiver.wait_for(hits.len() + 1).await;
        assert_eq!(hits.last().expect("a post").kind(), "case.message");
        advance(&scene, 1).await;
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            1.0
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_the_receiver_refuses_alone_does_not_hold_up_the_others() {
    within(async {
        let receiver = Receiver::start(&[Answer::Status(400)]).await;
        let (scene, metrics) = scene(memory(), Clock::manual(T0), receiver.url()).await;
        let header = open_case(&scene).await;
        receiver.wait_for(1).await;
        // Refused with 400: the next event goes at once, the refused one
        // after its own pause.
        scene.api.reply_as(&ANN, &header, "请稍等");
        let hits = receiver.wait_for(2).await;
        assert_eq!(hits[1].kind(), "case.message");
        advance(&scene, 4).await;
        assert_eq!(receiver.hits().len(), 2);
        scene.clock.advance(1);
        let hits = receiver.wait_for(3).await;
        assert_eq!(
            (hits[2].kind(), hits[2].id()),
            (hits[0].kind(), hits[0].id())
        );
        settle(&scene, scene.clock.now()).await;
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            2.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_retried_total").await,
            1.0
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_receiver_down_for_an_hour_gets_every_event_in_order_once_it_is_back() {
    within(async {
        let ui = real_tree().ui().clone();
        let address = free_address();
        let url: url::Url = format!("http://{address}/hooks/icp").parse().unwrap();
        let (scene, metrics) = scene(memory(), Clock::manual(T0), url).await;
        let api = scene.api.clone();
        let header = open_case(&scene).await;
        settle(&scene, T0).await;
        // The conversation goes on while nothing can be posted.
        for n in 0..3 {
            let text = format!("第{n}条消息");
            api.reply_as(&ANN, &header, &text);
            sent_to(&api, ALICE.id as i64, &text).await;
        }
        press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, Lang::Zh));
        sent_to(
            &api,
            ALICE.id as i64,
            &ui.text(UiText::CaseTaken, Lang::Zh)
                .replace("{staff}", "Ann"),
        )
        .await;
        // An hour down, looked at every minute.
        for _ in 0..60 {
            advance(&scene, 60).await;
        }
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            5.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            0.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_given_up_total").await,
            0.0
        );
        // One try per pause, the pause doubling to ten minutes: a dozen or
        // so in the hour, not one a minute.
        let tries = figure(metrics, "icp_sms_doctor_case_events_retried_total").await;
        assert!((8.0..=14.0).contains(&tries), "{tries} tries in an hour");

        let receiver = Receiver::start_on(address, &[]).await;
        advance(&scene, 600).await;
        let hits = receiver.wait_for(5).await;
        let kinds: Vec<String> = hits.iter().map(Hit::kind).collect();
        assert_eq!(
            kinds,
            [
                "case.opened",
                "case.message",
                "case.message",
                "case.message",
                "case.taken"
            ]
        );
        let texts: Vec<Value> = hits[1..4]
            .iter()
            .map(|h| h.json()["data"]["text"].clone())
            .collect();
        assert_eq!(texts, ["第0条消息", "第1条消息", "第2条消息"]);
        assert!(
            hits.iter()
                .all(|h| verifies(SECRET, &h.body, h.header("x-signature-256")))
        );
        settle(&scene, scene.clock.now()).await;
        assert_eq!(receiver.hits().len(), 5, "each once");
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            5.0
        );
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_queued").await,
            0.0
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn events_cut_short_by_a_crash_or_queued_at_a_stop_are_posted_after_the_restart() {
    within(async {
        let store = Store::sqlite(&db_path("case-webhook-restart")).unwrap();
        // The first post hangs: the bot is killed in the middle of it.
        let receiver = Receiver::start(&[Answer::Hang]).await;
        let (mut scene, _) = scene(store.clone(), Clock::manual(T0), receiver.url()).await;
        let header = open_case(&scene).await;
        let first = receiver.wait_for(1).await;
        assert_eq!(first[0].kind(), "case.opened");
        scene.crash();

        // Started again: the event's claim lapses within a minute and it
        // is posted again, the same event (at least once).
        scene.relaunch(store.clone()).await;
        settle(&scene, T0).await;
        assert_eq!(receiver.hits().len(), 1, "not while the claim runs");
        advance(&scene, 61).await;
        let hits = receiver.wait_for(2).await;
        assert_eq!(
            (hits[1].id(), &hits[1].body),
            (first[0].id(), &first[0].body)
        );

        // Down, then stopped with an event queued: posted after the start.
        receiver.stop();
        let api = scene.api.clone();
        api.reply_as(&ANN, &header, "还在吗？");
        sent_to(&api, ALICE.id as i64, "还在吗？").await;
        settle(&scene, scene.clock.now()).await;
        scene.restart(store.clone()).await;
        let back = Receiver::start_on(receiver.address, &[]).await;
        advance(&scene, 600).await;
        let hits = back.wait_for(1).await;
        assert_eq!(hits[0].kind(), "case.message");
        assert_eq!(hits[0].json()["data"]["text"], "还在吗？");
        settle(&scene, scene.clock.now()).await;
        assert_eq!(back.hits().len(), 1);
        assert_eq!(store.case_events_queued().await.unwrap(), 0);
        scene.stop().await;
    })
    .await;
}

/// A Python receiver, stopped when the test ends however it ends.
struct Python(std::process::Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's output, line by line as it is written.
fn lines_of(out: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The receiving example of docs/case-webhook.md, as a reader copies it.
fn docs_receiver() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/case-webhook.md");
    let text = std::fs::read_to_string(path).expect("docs/case-webhook.md");
    let (_, rest) = text
        .split_once("```python\n")
        .expect("the docs give a Python receiver");
    rest.split("```").next().expect("its end").to_string()
}

#[tokio::test]
async fn the_docs_python_receiver_takes_signed_events_once_and_refuses_forged_ones() {
    within(async {
        if std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").is_err(),
                "python3 is needed under CI to run the docs' receiver"
            );
            eprintln!("SKIPPED: no python3 to run the docs' receiver");
            return;
        }
        let address = free_address();
        let mut python = Python(
            std::process::Command::new("python3")
                .arg("-c")
                .arg(docs_receiver())
                .env("CASE_WEBHOOK_SECRET", SECRET)
                .env("PORT", address.port().to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("python3 starts"),
        );
        let mut lines = lines_of(python.0.stdout.take().expect("its stdout"));
        assert!(lines.recv().await.expect("a line").starts_with("listening"));

        let url: url::Url = format!("http://{address}/").parse().unwrap();
        let (scene, metrics) = scene(memory(), Clock::manual(T0), url.clone()).await;
        open_case(&scene).await;
        assert_eq!(lines.recv().await.expect("a line"), "case.opened 1 open");
        advance(&scene, 1).await;
        assert_eq!(
            figure(metrics, "icp_sms_doctor_case_events_posted_total").await,
            1.0
        );

        // Forged or replayed posts straight to it.
        let body =
            r#"{"schema":1,"id":"x","type":"case.closed","case":{"id":1,"status":"closed"}}"#;
        let client = reqwest::Client::new();
        let post = |signature: String| {
            client
                .post(url.clone())
                .header("Content-Type", "application/json")
                .header("X-Signature-256", signature)
                .body(body)
                .send()
        };
        let forged = post(signature(
            "not-the-secret-at-all-not-at-all",
            body.as_bytes(),
        ));
        assert_eq!(forged.await.expect("an answer").status(), 401);
        let unsigned = post(String::new());
        assert_eq!(unsigned.await.expect("an answer").status(), 401);
        let signed = post(signature(SECRET, body.as_bytes()));
        assert_eq!(signed.await.expect("an answer").status(), 204);
        let again = post(signature(SECRET, body.as_bytes()));
        assert_eq!(again.await.expect("an answer").status(), 204);
        // Handled once: the repeat printed nothing, the next line is the
        // first signed one's.
        assert_eq!(lines.recv().await.expect("a line"), "case.closed 1 closed");
        drop(python);
        let mut rest = Vec::new();
        while let Some(line) = lines.recv().await {
            rest.push(line);
        }
        assert!(rest.is_empty(), "{rest:?}");
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn without_a_case_webhook_nothing_is_queued() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::System, staffed()).await;
        scene.api.set_member(STAFF, ANN.id, "member");
        assert!(scene.bot().case_events_settled().is_none());
        open_case(&scene).await;
        assert_eq!(store.case_events_queued().await.unwrap(), 0);
        scene.stop().await;
    })
    .await;
}
