//! The picture as a standalone SVG image, laid out in-process by layout-rs, then made to draw alike in browsers, rsvg-convert and ImageMagick.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{Colours, EDGE, Kind, Picture, is_wide};

impl Picture {
    /// An SVG image, laid out by layout-rs. Every text is 15 px, the size
    /// layout-rs gives an edge label it moves onto a point of its own: its
    /// SVG writer declares one style per font size, in the order of a hash
    /// map, so two sizes would come out in a different order each run.
    pub(super) fn svg(&self) -> String {
        const FONT_SIZE: usize = 15;
        const PADDING: f64 = 10.0;
        const ROUNDED: usize = 12;
        let mut graph = VisualGraph::new(Orientation::TopToBottom);
        let handles: Vec<_> = self
            .shapes
            .iter()
            .map(|shape| {
                let Colours { fill, stroke } = shape.colours();
                let (line_width, rounded) = match shape.kind {
                    Kind::Entry => (4, 0),
                    Kind::Question => (1, 0),
                    Kind::End => (1, ROUNDED),
                };
                let look = StyleAttr::new(
                    Color::fast(stroke),
                    line_width,
                    Some(Color::fast(fill)),
                    rounded,
                    FONT_SIZE,
                );
                let text = shape.lines.join("\n");
                let size = text_size(&text, FONT_SIZE);
                let size = Point::new(size.x + 2.0 * PADDING, size.y + 2.0 * PADDING);
                let element =
                    Element::create(ShapeKind::Box(text), look, Orientation::TopToBottom, size);
                graph.add_node(element)
            })
            .collect();
        for line in &self.lines {
            let look = StyleAttr::new(Color::fast(EDGE), 1, None, 0, FONT_SIZE);
            let style = if line.dashed {
                LineStyleKind::Dashed
            } else {
                LineStyleKind::Normal
            };
            // Laid out as a box of its own: wrapped, so that long answers
            // do not spread the picture past what image tools accept.
            let label = wrap(line.label.as_deref().unwrap_or_default(), LABEL_WIDTH);
            let arrow = Arrow::new(
                LineEndKind::None,
                LineEndKind::Arrow,
                style,
                &label,
                &look,
                &None,
                &None,
            );
            graph.add_edge(arrow, handles[line.from], handles[line.to]);
        }
        let mut writer = SVGWriter::new();
        graph.do_it(false, false, false, &mut writer);
        // A white canvas first, so that the edges and their labels, drawn
        // in dark grey, stay readable where the page behind is dark. The
        // arrowheads are drawn as triangles of their own, in the edges'
        // colour: markers with `context-stroke` are SVG 2, and
        // ImageMagick's own renderer draws no markers at all. The fonts
        // name Chinese ones first, for renderers that take the first.
        let image = writer
            .finalize()
            .replacen(
                "</defs>",
                "</defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
                1,
            )
            .replace("fill=\"context-stroke\"", &format!("fill=\"{EDGE}\""))
            .replace("font-family: Times, serif;", FONTS);
        let image = explicit_arrowheads(&image);
        // Its writer indents and spaces out every element; without the
        // blank lines and trailing spaces the file is a fifth smaller.
        let mut svg = String::new();
        for line in image.lines() {
            let line = line.trim_end();
            if !line.trim_start().is_empty() {
                svg.push_str(line);
                svg.push('\n');
            }
        }
        svg
    }
}

/// The SVG's fonts: Chinese ones where the machine has them, else its
/// sans-serif.
const FONTS: &str = "font-family: 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', \
                     'PingFang SC', 'WenQuanYi Micro Hei', 'Droid Sans Fallback', sans-serif;";

/// The length and half width of an arrowhead, in pixels (the markers'
/// own size).
const ARROW: (f64, f64) = (10.0, 3.5);

/// `svg` with each edge's marker replaced by a triangle drawn after it:
/// at the end of the path for `marker-end`, at its start for
/// `marker-start` (an edge the layout drew backwards), pointing along the
/// curve's last (or first) control point.
fn explicit_arrowheads(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len() + svg.len() / 8);
    let mut rest = svg;
    while let Some(at) = rest.find("<path ") {
        let Some(close) = rest[at..].find("/>") else {
            break;
        };
        let element = &rest[at..at + close + 2];
        out.push_str(&rest[..at]);
        rest = &rest[at + close + 2..];
        let numbers: Vec<f64> = element
            .split_once(" d=\"")
            .and_then(|(_, d)| d.split_once('"'))
            .map(|(d, _)| {
                d.split([' ', ','])
                    .filter_map(|n| n.parse::<f64>().ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut heads = Vec::new();
        let mut element = element.to_string();
        if numbers.len() >= 4 {
            let n = numbers.len();
            for (marker, tip, from) in [
                (
                    " marker-end=\"url(#endarrow)\"",
                    (numbers[n - 2], numbers[n - 1]),
                    (numbers[n - 4], numbers[n - 3]),
                ),
                (
                    " marker-start=\"url(#startarrow)\"",
                    (numbers[0], numbers[1]),
                    (numbers[2], numbers[3]),
                ),
            ] {
                if element.contains(marker) {
                    element = element.replacen(marker, "", 1);
                    heads.push(arrowhead(tip, from));
                }
            }
        }
        out.push_str(&element);
        for head in heads {
            out.push_str(&head);
        }
    }
    out.push_str(rest);
    out
}

/// A triangle with its point at `tip`, coming from `from`.
fn arrowhead(tip: (f64, f64), from: (f64, f64)) -> String {
    let (dx, dy) = (tip.0 - from.0, tip.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = if length > f64::EPSILON {
        (dx / length, dy / length)
    } else {
        (0.0, 1.0)
    };
    let (long, half) = ARROW;
    let base = (tip.0 - ux * long, tip.1 - uy * long);
    let side = (-uy * half, ux * half);
    format!(
        "\n<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{EDGE}\"/>",
        tip.0,
        tip.1,
        base.0 + side.0,
        base.1 + side.1,
        base.0 - side.0,
        base.1 - side.1
    )
}

/// The widest line of an edge's label in the SVG, in columns (a Chinese
/// character is two).
const LABEL_WIDTH: usize = 18;

/// `text` broken into lines of at most `width` columns: between words,
/// and inside a word (a run of Chinese has no spaces) where it must.
fn wrap(text: &str, width: usize) -> String {
    let columns = |c: char| if c.is_ascii() { 1 } else { 2 };
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let size: usize = word.chars().map(columns).sum();
        if used > 0 && used + 1 + size > width {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        for c in word.chars() {
            if used + columns(c) > width && used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += columns(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.join("\n")
}

/// About how much room `text` takes at `font_size`: Chinese characters
/// (and other wide ones) a full em, others a little over half. layout-rs
/// would count a full em for every character, doubling the width of
/// English boxes.
fn text_size(text: &str, font_size: usize) -> Point {
    let em = font_size as f64;
    let width = text
        .lines()
        .map(|line| {
            line.chars()
                .map(|c| if is_wide(c) { 1.0 } else { 0.6 })
                .sum::<f64>()
        })
        .fold(1.0, f64::max);
    let lines = text.lines().count().max(1);
    Point::new(width * em, lines as f64 * em * 1.2)
}

#[cfg(test)]
mod tests {
    use super::text_size;

    #[test]
    fn edge_labels_wrap_between_words_and_inside_chinese() {
        assert_eq!(
            super::wrap("Passed on over 24 hours ago ×12", 18),
            "Passed on over 24\nhours ago ×12"
        );
        assert_eq!(
            super::wrap("报送后已等了超过24小时 ×3", 18),
            "报送后已等了超过24\n小时 ×3"
        );
        assert_eq!(super::wrap("short", 18), "short");
        assert_eq!(super::wrap("", 18), "");
    }

    #[test]
    fn chinese_text_is_measured_wider_than_as_many_latin_letters() {
        let zh = text_size("短信核验", 10);
        let en = text_size("abcd", 10);
        assert_eq!(zh.x, 40.0);
        assert_eq!(en.x, 24.0);
        assert_eq!(text_size("a\nb", 10).y, 24.0);
    }
}
