//! The report page's two charts, as inline SVG: the latency histogram
//! and throughput over time.

use std::fmt::Write;

use super::{Bucket, Sample, escape, micros};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 10.0;

/// Bars of the latency histogram.
pub(super) fn histogram_svg(buckets: &[Bucket]) -> String {
    if buckets.is_empty() {
        return "<p>No echoes were received.</p>\n".to_owned();
    }
    let max = buckets
        .iter()
        .map(|bucket| bucket.count)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let bar = plot_width / buckets.len() as f64;
    let mut svg = svg_open("latency histogram");
    axes(&mut svg, &format!("{max:.0}"), "echoes");
    let every = buckets.len().div_ceil(12);
    for (index, bucket) in buckets.iter().enumerate() {
        let height = bucket.count as f64 / max * plot_height;
        let x = LEFT + index as f64 * bar;
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"#2a7ae2\">\
             <title>&le; {}: {}</title></rect>",
            x + 1.0,
            TOP + plot_height - height,
            (bar - 2.0).max(1.0),
            micros(bucket.le_us),
            bucket.count
        );
        if index % every == 0 {
            x_label(&mut svg, x + bar / 2.0, &micros(bucket.le_us));
        }
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">round trip (upper bound of each bucket)</text>",
        LEFT + plot_width / 2.0,
        HEIGHT - 5.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// A line of messages per second over time.
pub(super) fn timeline_svg(timeline: &[Sample]) -> String {
    if timeline.is_empty() {
        return "<p>The run was too short to sample.</p>\n".to_owned();
    }
    let max_rate = timeline
        .iter()
        .map(|sample| sample.msgs_per_sec)
        .fold(0.0, f64::max)
        .max(1.0);
    let max_t = timeline.last().map_or(1.0, |sample| sample.t).max(1e-3);
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let mut svg = svg_open("throughput over time");
    axes(&mut svg, &format!("{max_rate:.0}"), "msgs/s");
    let points: Vec<String> = timeline
        .iter()
        .map(|sample| {
            format!(
                "{:.1},{:.1}",
                LEFT + sample.t / max_t * plot_width,
                TOP + plot_height - sample.msgs_per_sec / max_rate * plot_height
            )
        })
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"#2a7ae2\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    for step in 0..=4 {
        let t = max_t * f64::from(step) / 4.0;
        x_label(
            &mut svg,
            LEFT + t / max_t * plot_width,
            &format!("{t:.1} s"),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The width of `text` at the labels' 11px, generously (0.62 em per
/// character; digits and units are narrower).
fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * 11.0 * 0.62
}

/// A label under the x axis at `x`: centred on it, unless that would cut
/// it at the right edge (the last labels), where it ends at `x` instead.
fn x_label(svg: &mut String, x: f64, text: &str) {
    let anchor = if x + label_width(text) / 2.0 > WIDTH {
        "end"
    } else {
        "middle"
    };
    let _ = writeln!(
        svg,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
        HEIGHT - BOTTOM + 15.0,
        escape(text)
    );
}

fn svg_open(label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{label}\">\n"
    )
}

/// The two axes, the top value and the vertical unit.
fn axes(svg: &mut String, top: &str, unit: &str) {
    let bottom = HEIGHT - BOTTOM;
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{top}</text>\
         <text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{unit}</text>",
        WIDTH - 10.0,
        LEFT - 5.0,
        TOP + 10.0,
        LEFT - 5.0,
        LEFT - 5.0,
        TOP + 25.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels under the x axis: (left edge, right edge) as drawn,
    /// from their x, anchor and estimated width.
    fn x_label_extents(svg: &str) -> Vec<(f64, f64, String)> {
        let y = format!("y=\"{:.1}\"", HEIGHT - BOTTOM + 15.0);
        svg.lines()
            .filter(|line| line.starts_with("<text x=") && line.contains(&y))
            .map(|line| {
                let x: f64 = line["<text x=\"".len()..]
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let anchor = line
                    .split("text-anchor=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let text = line
                    .split('>')
                    .nth(1)
                    .unwrap()
                    .split('<')
                    .next()
                    .unwrap()
                    .to_owned();
                let width = label_width(&text);
                let left = match anchor {
                    "end" => x - width,
                    "middle" => x - width / 2.0,
                    _ => x,
                };
                (left, left + width, text)
            })
            .collect()
    }

    #[test]
    fn no_x_axis_label_is_cut_at_the_right_edge() {
        let timeline: Vec<Sample> = (1..=40)
            .map(|step| Sample {
                t: f64::from(step) * 0.25,
                msgs_per_sec: 1000.0,
                mb_per_sec: 1.0,
            })
            .collect();
        let svg = timeline_svg(&timeline);
        let labels = x_label_extents(&svg);
        assert_eq!(labels.len(), 5, "{svg}");
        assert_eq!(labels[4].2, "10.0 s");
        let buckets: Vec<Bucket> = (0..24)
            .map(|step| Bucket {
                le_us: f64::from(1u32 << step),
                count: 1,
            })
            .collect();
        let histogram = histogram_svg(&buckets);
        let mut all = labels;
        all.extend(x_label_extents(&histogram));
        assert!(all.len() > 10);
        for (left, right, text) in all {
            assert!(
                left >= 0.0 && right <= WIDTH,
                "{text:?}: {left:.1}..{right:.1}"
            );
        }
    }
}
