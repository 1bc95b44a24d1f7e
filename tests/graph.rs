//! The dialogue as a picture: a small tree drawn in full in each format, and the `graph` command (docs/dialogue.md's chart and docs/tree.svg are held to the real tree in `docs.rs`).

use std::collections::HashMap;
use std::process::Command;

use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::Tree;
use icp_sms_doctor::tree::graph::{Format, NodeUse, Usage, render};

use crate::support::{load_over_base, real_tree};

/// The base fixture with `tests/fixtures/graph/` laid over it: a category
/// that asks a question, two answers to one node, a node two categories
/// reach, the triage behind "not sure", and texts each format escapes.
fn small_tree() -> Tree {
    load_over_base("tests/fixtures/graph").unwrap_or_else(|e| panic!("{e}"))
}

const SMALL_MERMAID: &str = r##"flowchart TD
    n_menu{{"Which one?<br/>(menu)"}}:::neutral
    n_timeout["After the timeout<br/>(timeout)"]:::cat_timeout
    n_not_received(["Not received<br/>(not_received)"]):::cat_not_received
    n_mismatch(["Mismatch<br/>(mismatch)"]):::cat_mismatch
    n_reset(["Reset<br/>(reset)"]):::cat_reset
    n_unsure["A text from #quot;12381#quot;?<br/>(unsure)"]:::neutral
    n_resubmit(["Resubmit<br/>(resubmit)"]):::cat_timeout
    n_wait(["Wait<br/>(wait)"]):::cat_timeout
    n_contact(["Tell the provider<br/>(contact)"]):::cat_not_received
    n_unsure_code(["Type the #lt;code#gt; #amp; #quot;C:\x#quot; into…<br/>(unsure_code)"]):::neutral
    n_menu --> n_timeout
    n_menu --> n_not_received
    n_menu --> n_mismatch
    n_menu --> n_reset
    n_menu --> n_unsure
    n_timeout --> n_resubmit
    n_timeout --> n_wait
    n_not_received -.->|"Not solved"| n_contact
    n_mismatch -.->|"Not solved"| n_reset
    n_reset -.->|"Not solved"| n_menu
    n_unsure --> n_unsure_code
    n_unsure --> n_not_received
    n_resubmit -.->|"Not solved"| n_contact
    n_wait -.->|"Not solved"| n_contact
    n_unsure_code -.->|"Not solved"| n_mismatch
    classDef neutral fill:#eeeeee,stroke:#616161,color:#000000
    classDef cat_timeout fill:#dbeafe,stroke:#1d4ed8,color:#000000
    classDef cat_not_received fill:#dcfce7,stroke:#15803d,color:#000000
    classDef cat_mismatch fill:#fef3c7,stroke:#b45309,color:#000000
    classDef cat_reset fill:#fce7f3,stroke:#be185d,color:#000000
    style n_menu stroke-width:4px
"##;

const SMALL_DOT: &str = r##"digraph dialogue {
    node [shape=box, style=filled, fontname="sans-serif"];
    edge [fontname="sans-serif"];
    "menu" [label="Which one?\n(menu)", fillcolor="#eeeeee", color="#616161", penwidth=3];
    "timeout" [label="After the timeout\n(timeout)", fillcolor="#dbeafe", color="#1d4ed8"];
    "not_received" [label="Not received\n(not_received)", fillcolor="#dcfce7", color="#15803d", style="rounded,filled"];
    "mismatch" [label="Mismatch\n(mismatch)", fillcolor="#fef3c7", color="#b45309", style="rounded,filled"];
    "reset" [label="Reset\n(reset)", fillcolor="#fce7f3", color="#be185d", style="rounded,filled"];
    "unsure" [label="A text from \"12381\"?\n(unsure)", fillcolor="#eeeeee", color="#616161"];
    "resubmit" [label="Resubmit\n(resubmit)", fillcolor="#dbeafe", color="#1d4ed8", style="rounded,filled"];
    "wait" [label="Wait\n(wait)", fillcolor="#dbeafe", color="#1d4ed8", style="rounded,filled"];
    "contact" [label="Tell the provider\n(contact)", fillcolor="#dcfce7", color="#15803d", style="rounded,filled"];
    "unsure_code" [label="Type the <code> & \"C:\\x\" into…\n(unsure_code)", fillcolor="#eeeeee", color="#616161", style="rounded,filled"];
    "menu" -> "timeout";
    "menu" -> "not_received";
    "menu" -> "mismatch";
    "menu" -> "reset";
    "menu" -> "unsure";
    "timeout" -> "resubmit";
    "timeout" -> "wait";
    "not_received" -> "contact" [style=dashed, label="Not solved"];
    "mismatch" -> "reset" [style=dashed, label="Not solved"];
    "reset" -> "menu" [style=dashed, label="Not solved"];
    "unsure" -> "unsure_code";
    "unsure" -> "not_received";
    "resubmit" -> "contact" [style=dashed, label="Not solved"];
    "wait" -> "contact" [style=dashed, label="Not solved"];
    "unsure_code" -> "mismatch" [style=dashed, label="Not solved"];
}
"##;

#[test]
fn a_small_tree_as_mermaid() {
    assert_eq!(
        render(&small_tree(), Format::Mermaid, Lang::En, None),
        SMALL_MERMAID
    );
}

#[test]
fn a_small_tree_as_dot() {
    assert_eq!(
        render(&small_tree(), Format::Dot, Lang::En, None),
        SMALL_DOT
    );
}

fn some_usage() -> Usage {
    let edge = |from: &str, to: &str, n: u64| ((from.to_string(), to.to_string()), n);
    let node = |id: &str, reached: u64, left: u64| {
        let solved_after = reached - left;
        (
            id.to_string(),
            NodeUse {
                reached,
                left,
                solved_after,
            },
        )
    };
    Usage {
        edges: HashMap::from([
            edge("menu", "timeout", 12),
            edge("menu", "unsure", 3),
            edge("timeout", "resubmit", 7),
            edge("timeout", "wait", 5),
            edge("resubmit", "contact", 1),
            edge("reset", "menu", 2),
            // A way the tree no longer has is left out.
            edge("menu", "gone", 9),
        ]),
        ends: HashMap::from([
            ("resubmit".to_string(), (3, 1)),
            ("wait".to_string(), (5, 0)),
            ("mismatch".to_string(), (0, 2)),
            ("gone".to_string(), (1, 1)),
        ]),
        nodes: HashMap::from([
            node("menu", 15, 0),
            node("timeout", 12, 0),
            node("unsure", 3, 3),
            node("resubmit", 7, 1),
            node("wait", 5, 0),
            node("mismatch", 2, 2),
            node("contact", 1, 0),
        ]),
    }
}

#[test]
fn with_usage_each_node_shows_what_people_did_and_each_edge_its_answer_and_count() {
    // Each box says how many reached it and stopped there, and is filled by
    // that share (green none, orange under a quarter, red half or more,
    // white-grey nobody came); each end adds its rate; each edge names
    // its answer (two answers to one node, both) and how often it was taken.
    let expected = r##"flowchart TD
    n_menu{{"Which one?<br/>(menu)<br/>reached 15 · stopped here 0"}}:::neutral
    n_timeout["After the timeout<br/>(timeout)<br/>reached 12 · stopped here 0"]:::cat_timeout
    n_not_received(["Not received<br/>(not_received)<br/>reached 0 · stopped here 0<br/>no answers yet"]):::cat_not_received
    n_mismatch(["Mismatch<br/>(mismatch)<br/>reached 2 · stopped here 2<br/>solved 0/2 (0%)"]):::cat_mismatch
    n_reset(["Reset<br/>(reset)<br/>reached 0 · stopped here 0<br/>no answers yet"]):::cat_reset
    n_unsure["A text from #quot;12381#quot;?<br/>(unsure)<br/>reached 3 · stopped here 3"]:::neutral
    n_resubmit(["Resubmit<br/>(resubmit)<br/>reached 7 · stopped here 1<br/>solved 3/4 (75%)"]):::cat_timeout
    n_wait(["Wait<br/>(wait)<br/>reached 5 · stopped here 0<br/>solved 5/5 (100%)"]):::cat_timeout
    n_contact(["Tell the provider<br/>(contact)<br/>reached 1 · stopped here 0<br/>no answers yet"]):::cat_not_received
    n_unsure_code(["Type the #lt;code#gt; #amp; #quot;C:\x#quot; into…<br/>(unsure_code)<br/>reached 0 · stopped here 0<br/>no answers yet"]):::neutral
    n_menu -->|"Timeout ×12"| n_timeout
    n_menu -->|"Not received ×0"| n_not_received
    n_menu -->|"Mismatch ×0"| n_mismatch
    n_menu -->|"Reset ×0"| n_reset
    n_menu -->|"Not sure ×3"| n_unsure
    n_timeout -->|"Not yet / Don't know ×7"| n_resubmit
    n_timeout -->|"Yes ×5"| n_wait
    n_not_received -.->|"Not solved ×0"| n_contact
    n_mismatch -.->|"Not solved ×0"| n_reset
    n_reset -.->|"Not solved ×2"| n_menu
    n_unsure -->|"Yes ×0"| n_unsure_code
    n_unsure -->|"No ×0"| n_not_received
    n_resubmit -.->|"Not solved ×1"| n_contact
    n_wait -.->|"Not solved ×0"| n_contact
    n_unsure_code -.->|"Not solved ×0"| n_mismatch
    classDef neutral fill:#eeeeee,stroke:#616161,color:#000000
    classDef cat_timeout fill:#dbeafe,stroke:#1d4ed8,color:#000000
    classDef cat_not_received fill:#dcfce7,stroke:#15803d,color:#000000
    classDef cat_mismatch fill:#fef3c7,stroke:#b45309,color:#000000
    classDef cat_reset fill:#fce7f3,stroke:#be185d,color:#000000
    style n_menu stroke-width:4px
    style n_menu fill:#e8f5e9
    style n_timeout fill:#e8f5e9
    style n_not_received fill:#fafafa
    style n_mismatch fill:#ef9a9a
    style n_reset fill:#fafafa
    style n_unsure fill:#ef9a9a
    style n_resubmit fill:#ffe0b2
    style n_wait fill:#e8f5e9
    style n_contact fill:#e8f5e9
    style n_unsure_code fill:#fafafa
"##;
    assert_eq!(
        render(
            &small_tree(),
            Format::Mermaid,
            Lang::En,
            Some(&some_usage())
        ),
        expected
    );
}

#[test]
fn with_usage_in_dot_the_rate_is_a_line_of_the_label_and_the_count_the_edge_label() {
    let dot = render(&small_tree(), Format::Dot, Lang::En, Some(&some_usage()));
    assert!(
        dot.contains(r##""resubmit" [label="Resubmit\n(resubmit)\nreached 7 · stopped here 1\nsolved 3/4 (75%)", fillcolor="#ffe0b2", "##),
        "{dot}"
    );
    assert!(
        dot.contains(r#""resubmit" -> "contact" [style=dashed, label="Not solved ×1"];"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#""menu" -> "timeout" [label="Timeout ×12"];"#),
        "{dot}"
    );
}

#[test]
fn the_svg_uses_no_svg_2_paint_so_every_renderer_draws_the_arrowheads() {
    let svg = render(&small_tree(), Format::Svg, Lang::En, Some(&some_usage()));
    assert!(!svg.contains("context-stroke"), "{svg}");
    // No edge leans on a marker: each has its own triangle.
    assert!(
        !svg.contains("marker-end=") && !svg.contains("marker-start="),
        "{svg}"
    );
    let edges = svg.matches("<path id=\"arrow").count();
    let heads = svg.matches("fill=\"#424242\"/>").count();
    assert!(
        edges > 10 && heads == edges,
        "{edges} edges, {heads} arrowheads"
    );
    // The answers and counts are on the edges, the heat in the boxes.
    assert!(svg.contains("Timeout ×12"), "{svg}");
    assert!(svg.contains("#ffe0b2"), "{svg}");
}

#[test]
fn labels_are_in_the_language_asked_for() {
    let mermaid = render(
        &small_tree(),
        Format::Mermaid,
        Lang::Zh,
        Some(&some_usage()),
    );
    assert!(
        mermaid.contains(r#"n_timeout["超时之后<br/>(timeout)<br/>到达 12 · 停在这里 0"]"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"n_resubmit(["重新提交<br/>(resubmit)<br/>到达 7 · 停在这里 1<br/>已解决 3/4 (75%)"])"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"n_reset -.->|"未解决 ×2"| n_menu"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"n_timeout -->|"还没有 / 不知道 ×7"| n_resubmit"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"n_unsure_code(["在工信部备案系统首页的「短信核验」里输入6位验证码、手机号和…<br/>(unsure_code)<br/>到达 0 · 停在这里 0<br/>尚无回答"])"#),
        "{mermaid}"
    );
}

#[test]
fn a_node_two_categories_reach_takes_the_colour_of_the_one_that_reaches_it_first() {
    // "contact" is one step from not_received and two from timeout.
    let dot = render(&small_tree(), Format::Dot, Lang::En, None);
    let green = r##"fillcolor="#dcfce7""##;
    assert!(
        dot.lines()
            .any(|l| l.starts_with(r#"    "contact" ["#) && l.contains(green)),
        "{dot}"
    );
}

#[test]
fn the_dot_output_parses_as_dot() {
    for tree in [small_tree(), real_tree()] {
        let dot = render(&tree, Format::Dot, Lang::Zh, Some(&some_usage()));
        let mut parser = layout::gv::DotParser::new(&dot);
        assert!(parser.process().is_ok(), "{dot}");
    }
}

#[test]
fn svg_labels_are_escaped_for_xml() {
    let svg = render(&small_tree(), Format::Svg, Lang::En, None);
    assert!(
        svg.contains("Type the &lt;code&gt; &amp; &quot;C:\\x&quot; into…"),
        "{svg}"
    );
}

#[test]
fn the_real_tree_as_svg_is_one_image_naming_every_node_in_chinese() {
    let tree = real_tree();
    let svg = render(&tree, Format::Svg, Lang::Zh, None);
    assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    for (_, node) in tree.nodes() {
        assert!(
            svg.contains(&format!("({})", node.id)),
            "{} missing",
            node.id
        );
    }
    assert!(
        svg.contains("遇到的情况"),
        "the entry menu's brief in Chinese"
    );
}

#[test]
fn the_same_tree_always_gives_the_same_text() {
    let tree = real_tree();
    for format in [Format::Mermaid, Format::Dot, Format::Svg] {
        let first = render(&tree, format, Lang::En, Some(&some_usage()));
        let second = render(&tree, format, Lang::En, Some(&some_usage()));
        assert!(first == second, "{format:?} differs from run to run");
    }
}

fn graph_command(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .arg("graph")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIALOGS_DIR", "")
        .env("DEFAULT_LANG", "")
        .env("RUST_LOG", "")
        .output()
        .expect("the binary runs")
}

#[test]
fn graph_format_dot_prints_a_digraph_of_the_built_in_dialogs() {
    let out = graph_command(&["--format", "dot"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        render(&real_tree(), Format::Dot, Lang::Zh, None)
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn graph_draws_the_folder_given_in_the_language_given() {
    let out = graph_command(&["dialogs", "--lang", "en"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        render(&real_tree(), Format::Mermaid, Lang::En, None)
    );
}

#[test]
fn graph_of_a_broken_folder_exits_2_and_draws_nothing() {
    let out = graph_command(&["tests/fixtures/dialogs/dead_end"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing served"), "{stderr}");
}
