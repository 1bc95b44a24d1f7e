//! Webhook mode end to end: the bot registers its address and secret, takes only posts that carry the secret, answers through the Bot API, skips a repeat, and serves /healthz and /metrics on the same listener.

use std::net::SocketAddr;
use std::time::Duration;

use icp_sms_doctor::telegram::{Options, Webhook};
use serde_json::json;

use crate::bot::ALICE;
use crate::faulty::{Faulty, Op};
use crate::http::{get, post};
use crate::scene::{Scene, data_to, memory, options, within};

/// A loopback address no one listens on now.
pub fn free_address() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    socket.local_addr().expect("bound")
}

/// Options for webhook mode on `listen`, registering `url`'s path.
fn webhook_options(listen: SocketAddr, secret: &str) -> Options {
    Options {
        webhook: Some(Webhook {
            url: format!("http://{listen}/tg/hook").parse().expect("a URL"),
            listen,
            secret: secret.to_string(),
            register: true,
        }),
        ..options()
    }
}

#[tokio::test]
async fn webhook_posts_without_the_secret_are_refused_and_the_rest_answered_once() {
    within(async {
        let listen = free_address();
        let store = memory();
        let scene = Scene::paced(store.clone(), webhook_options(listen, "s3cret_X")).await;
        let api = scene.api.clone();
        // Registered with Telegram: the address and the secret.
        let registered = api.wait_for("setWebhook", 1).await;
        // (A multipart form, kept as text by the fake.)
        let form = registered[0].body.as_str().unwrap_or_default();
        assert!(form.contains(&format!("http://{listen}/tg/hook")), "{form}");
        assert!(form.contains("s3cret_X"), "{form}");
        assert!(api.calls_of("getUpdates").is_empty());

        // Posts without the secret, or with a wrong one, are refused and
        // nothing of them is recorded or handled.
        let forged = json!({
            "update_id": 9000,
            "message": {
                "message_id": 1, "date": 1_700_000_000,
                "chat": ALICE.private_chat(), "from": ALICE.user(), "text": "/diagnose"
            }
        })
        .to_string();
        for secret in [None, Some("wrong"), Some("s3cret_x")] {
            assert_eq!(
                post(listen, "/tg/hook", secret, &forged).await.unwrap(),
                401
            );
        }
        // Elsewhere than the registered path: not found.
        assert_eq!(
            post(listen, "/other", Some("s3cret_X"), &forged)
                .await
                .unwrap(),
            404
        );
        // Not an update: refused, and the bot goes on.
        assert_eq!(
            post(listen, "/tg/hook", Some("s3cret_X"), "{\"nonsense\":")
                .await
                .unwrap(),
            400
        );

        // Telegram's own posts carry the secret: answered through the API.
        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(ALICE.id as i64);
        let press = api.press(&ALICE, &menu, &data_to(&menu, "not_received"));
        api.wait_for("editMessageText", 1).await;
        api.wait_until(|calls| answered(calls, press)).await;
        api.webhook_answers(2).await;
        // Posted again (Telegram unsure it arrived): answered 200, skipped.
        api.post_again(api.update(press));
        let answers = api.webhook_answers(3).await;
        assert!(
            answers.iter().all(|(_, status)| *status == 200),
            "{answers:?}"
        );
        // The forged update's id was never recorded: the same id posted
        // with the secret is new, so handled. Alice's updates go through
        // one worker in order: had the repeat been handled, its edit
        // would have come before this reply.
        assert_eq!(
            post(listen, "/tg/hook", Some("s3cret_X"), &forged)
                .await
                .unwrap(),
            200
        );
        api.wait_for("sendMessage", 2).await;
        assert_eq!(api.calls_of("editMessageText").len(), 1);

        // Health and figures on the same listener.
        let (status, body) = get(listen, "/healthz").await.unwrap();
        assert_eq!((status, body.trim()), (200, "ok"));
        // A reply is counted once its answer is back, a moment after the
        // fake recorded it: looked at again until it is, for at most 5 s.
        let mut figures = String::new();
        for _ in 0..250 {
            let (status, text) = get(listen, "/metrics").await.unwrap();
            assert_eq!(status, 200);
            figures = text;
            if figures.contains("icp_sms_doctor_replies_sent_total 3") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for line in [
            "icp_sms_doctor_updates_total{kind=\"message\"} 2",
            "icp_sms_doctor_updates_total{kind=\"callback_query\"} 1",
            "icp_sms_doctor_replies_sent_total 3",
            "icp_sms_doctor_sessions_stored 1",
            "icp_sms_doctor_reminders_pending 0",
            "icp_sms_doctor_store_call_seconds_count{call=\"commit\"}",
            // The three forged posts, and the one posted again.
            "icp_sms_doctor_webhook_posts_refused_total 3",
            "icp_sms_doctor_updates_skipped_total{why=\"received_before\"} 1",
            "icp_sms_doctor_store_errors_total{call=\"commit\"} 0",
            "icp_sms_doctor_reloads_total{outcome=\"failed\"} 0",
        ] {
            assert!(figures.contains(line), "{line} in\n{figures}");
        }
        // The figures per node, of the loaded dialogue's version: Alice
        // reached the menu and not_received.
        let version = crate::support::real_tree().version().to_string();
        let reached =
            format!("icp_sms_doctor_node_reached{{node=\"not_received\",version=\"{version}\"}} 1");
        assert!(figures.contains(&reached), "{reached} in\n{figures}");
        // Those of another version, on request: none recorded.
        let (_, other) = get(listen, "/metrics?dialogue=none").await.unwrap();
        assert!(!other.contains("icp_sms_doctor_node_reached{"), "{other}");
        assert!(
            other.contains("icp_sms_doctor_replies_sent_total 3"),
            "{other}"
        );
        scene.stop().await;
        // Everything taken in was done, and marked so before the stop ended.
        assert!(store.inbox_open("any", 0).await.unwrap().is_empty());
        // Stopped: nothing listens any more.
        assert!(
            post(listen, "/tg/hook", Some("s3cret_X"), &forged)
                .await
                .is_err()
        );
    })
    .await;
}

/// Whether the press `id` was answered (its spinner stopped).
pub fn answered(calls: &[crate::fake_api::Call], id: i64) -> bool {
    calls.iter().any(|c| {
        c.method == "answercallbackquery" && c.body["callback_query_id"] == format!("cb{id}")
    })
}

#[tokio::test]
async fn healthz_says_503_while_the_store_fails() {
    within(async {
        let listen = free_address();
        let faulty = Faulty::new(memory(), |_| false);
        let store = faulty.store();
        let scene = Scene::paced(store, webhook_options(listen, "s")).await;
        let (status, _) = get(listen, "/healthz").await.unwrap();
        assert_eq!(status, 200);
        faulty.set_rule(|op| matches!(op, Op::Load(_)));
        let (status, body) = get(listen, "/healthz").await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("store"), "{body}");
        faulty.set_rule(|_| false);
        let (status, _) = get(listen, "/healthz").await.unwrap();
        assert_eq!(status, 200);
        tokio::time::timeout(Duration::from_secs(30), scene.stop())
            .await
            .expect("stopped");
    })
    .await;
}

#[tokio::test]
async fn polling_serves_health_and_metrics_on_metrics_listen() {
    within(async {
        let listen = free_address();
        let options = Options {
            metrics_listen: Some(listen),
            ..options()
        };
        let scene = Scene::paced(memory(), options).await;
        let listen = scene.metrics_listen().expect("a metrics address");
        let api = scene.api.clone();
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let (status, body) = get(listen, "/healthz").await.unwrap();
        assert_eq!((status, body.trim()), (200, "ok"));
        let (status, figures) = get(listen, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        assert!(
            figures.contains("icp_sms_doctor_updates_total{kind=\"message\"} 1"),
            "{figures}"
        );
        // Polling: no webhook route, and nothing registered.
        assert_eq!(post(listen, "/", Some("x"), "{}").await.unwrap(), 404);
        assert!(api.calls_of("setWebhook").is_empty());
        scene.stop().await;
    })
    .await;
}

/// The scene's own guard: a `/metrics` address some other socket holds by
/// the time the bot starts is traded for a free one, and the bot serves
/// there.
#[tokio::test]
async fn a_metrics_address_taken_meanwhile_is_traded_for_a_free_one() {
    within(async {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let busy = taken.local_addr().expect("bound");
        let options = Options {
            metrics_listen: Some(busy),
            ..options()
        };
        let scene = Scene::paced(memory(), options).await;
        let listen = scene.metrics_listen().expect("a metrics address");
        assert_ne!(listen, busy);
        let (status, body) = get(listen, "/healthz").await.unwrap();
        assert_eq!((status, body.trim()), (200, "ok"));
        scene.stop().await;
        drop(taken);
    })
    .await;
}
