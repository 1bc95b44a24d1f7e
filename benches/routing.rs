//! How long routing one typed message takes, for short and long messages in
//! both languages up to 4,096 characters, and how long loading the dialogs
//! takes, alone and with the first message routed (the classifier's
//! training). Run with `cargo bench --bench routing`.

use criterion::{Criterion, black_box, criterion_group, criterion_main};

const LONG_ZH: &str = "我在阿里云提交的备案，管局那边审核完了说要短信核验，结果等了一上午手机一直没收到12381的短信，拦截里也没有，换了手机也不行，重发了两次还是没有，这种情况怎么办啊";

/// `text` repeated and cut to exactly `n` characters.
fn of_length(text: &str, n: usize) -> String {
    text.chars().cycle().take(n).collect()
}

fn routing(c: &mut Criterion) {
    let tree = icp_sms_doctor::load_tree(None).expect("the dialogs load");
    let router = tree.router();
    let zh_4096 = of_length(LONG_ZH, 4096);
    let en_4096 = of_length(
        "my filing was sent back after too many tries and the new code never arrived, what now? ",
        4096,
    );
    // Characters of every kind, few of them known to the router.
    let mixed_4096: String = (0..4096u32)
        .map(|i| char::from_u32(0x4E00 + (i * 7919) % 20000).unwrap_or('字'))
        .collect();
    let messages = [
        ("short zh", "验证码一直收不到"),
        ("page message", "提示该条验证库里找不到记录怎么回事"),
        ("long zh", LONG_ZH),
        (
            "en",
            "my filing was sent back after too many tries, what now?",
        ),
        ("off topic", "how much is a .com domain"),
        ("4096 chars zh", zh_4096.as_str()),
        ("4096 chars en", en_4096.as_str()),
        ("4096 chars unknown", mixed_4096.as_str()),
    ];
    let mut group = c.benchmark_group("route one message");
    for (name, text) in messages {
        group.bench_function(name, |b| b.iter(|| router.route(black_box(text))));
    }
    group.finish();
}

fn loading(c: &mut Criterion) {
    // The whole load: reading and checking the dialogs and building the
    // similarity index, as at start and on every reload; then with the
    // first message routed, which trains the classifier.
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("dialogs", |b| {
        b.iter(|| icp_sms_doctor::load_tree(None).expect("the dialogs load"))
    });
    group.bench_function("dialogs and the first message routed", |b| {
        b.iter(|| {
            let tree = icp_sms_doctor::load_tree(None).expect("the dialogs load");
            tree.router().route(black_box("验证码一直收不到"));
            tree
        })
    });
    group.finish();
}

criterion_group!(benches, routing, loading);
criterion_main!(benches);
