//! How long routing one typed message takes, for short and long messages in
//! both languages. Run with `cargo bench --bench routing`.

use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn routing(c: &mut Criterion) {
    let tree = icp_sms_doctor::load_tree(None).expect("the dialogs load");
    let router = tree.router();
    let messages = [
        ("short zh", "验证码一直收不到"),
        ("page message", "提示该条验证库里找不到记录怎么回事"),
        (
            "long zh",
            "我在阿里云提交的备案，管局那边审核完了说要短信核验，结果等了一上午手机一直没收到12381的短信，拦截里也没有，换了手机也不行，重发了两次还是没有，这种情况怎么办啊",
        ),
        (
            "en",
            "my filing was sent back after too many tries, what now?",
        ),
        ("off topic", "how much is a .com domain"),
    ];
    let mut group = c.benchmark_group("route one message");
    for (name, text) in messages {
        group.bench_function(name, |b| b.iter(|| router.route(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
