//! The chart beside the results page: one panel per scenario, one
//! horizontal bar per server, its length the scenario's figure (CPU time
//! per message; p99 latency for (e); KiB per idle connection for (f)),
//! lower is better. Hand-written SVG, no script.

use std::fmt::Write;

use crate::plan::Server;
use crate::results::{ScenarioResult, figure};

const PANEL_WIDTH: f64 = 520.0;
const LABEL_WIDTH: f64 = 200.0;
const BAR_HEIGHT: f64 = 18.0;
const BAR_GAP: f64 = 5.0;
const PANEL_HEAD: f64 = 34.0;
const PANEL_GAP: f64 = 18.0;
const COLUMNS: usize = 2;

fn color(server: Server, deflate: bool) -> &'static str {
    match (server, deflate) {
        (Server::Raw, _) => "#8c8c8c",
        (Server::RawMio, _) => "#5c5c5c",
        (Server::RawReadiness, _) => "#adb5bd",
        (Server::Sockeye, false) => "#d9480f",
        (Server::Sockeye, true) => "#f08c00",
        (Server::SockeyeTokio, false) => "#c2255c",
        (Server::SockeyeTokio, true) => "#f06595",
        (Server::Tungstenite, _) => "#1971c2",
        (Server::Fastwebsockets, _) => "#2f9e44",
        (Server::Yawc, _) => "#7048e8",
        (Server::Node, _) => "#0c8599",
    }
}

/// The whole chart.
pub fn svg(title: &str, results: &[ScenarioResult]) -> String {
    let heights: Vec<f64> = results
        .iter()
        .map(|result| PANEL_HEAD + result.rows.len() as f64 * (BAR_HEIGHT + BAR_GAP) + 8.0)
        .collect();
    // Panels fill rows of COLUMNS; each row is as tall as its tallest.
    let row_heights: Vec<f64> = heights
        .chunks(COLUMNS)
        .map(|row| row.iter().copied().fold(0.0, f64::max))
        .collect();
    let width = COLUMNS as f64 * PANEL_WIDTH + (COLUMNS as f64 + 1.0) * PANEL_GAP;
    let height = 50.0 + row_heights.iter().map(|h| h + PANEL_GAP).sum::<f64>();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" role=\"img\" \
         aria-label=\"{}\">",
        escape(title)
    );
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n\
         <text x=\"{PANEL_GAP}\" y=\"28\" font-size=\"17\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{PANEL_GAP}\" y=\"44\" font-size=\"12\" fill=\"#555\">Server CPU time per \
         message (per delivery for h and i), p99 round trip for e (for k, l and m: publish to \
         delivery, worst node), memory per idle connection for f (per subscriber for j); \
         lower is better.</text>",
        escape(title)
    );
    let mut y = 50.0 + PANEL_GAP;
    for (row_index, chunk) in results.chunks(COLUMNS).enumerate() {
        for (column, result) in chunk.iter().enumerate() {
            let x = PANEL_GAP + column as f64 * (PANEL_WIDTH + PANEL_GAP);
            panel(&mut out, result, x, y);
        }
        y += row_heights[row_index] + PANEL_GAP;
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, result: &ScenarioResult, x: f64, y: f64) {
    let scenario = &result.scenario;
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">({}) {}</text>\n\
         <text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>",
        y + 12.0,
        scenario.id,
        escape(&shorten(&scenario.title, 70)),
        y + 26.0,
        result.primary_unit()
    );
    let values: Vec<Option<f64>> = result.rows.iter().map(|row| result.primary(row)).collect();
    let max = values
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-12);
    let raw = result.raw();
    let bar_space = PANEL_WIDTH - LABEL_WIDTH - 110.0;
    for (index, (row, value)) in result.rows.iter().zip(&values).enumerate() {
        let top = y + PANEL_HEAD + index as f64 * (BAR_HEIGHT + BAR_GAP);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            x + LABEL_WIDTH - 6.0,
            top + BAR_HEIGHT - 5.0,
            escape(&row.name)
        );
        match value {
            Some(value) => {
                let length = (value / max * bar_space).max(1.0);
                let label = match raw {
                    Some(raw) if raw > 0.0 && row.variant.server != Server::Raw => {
                        format!("{} ({:.2}x raw)", figure(Some(*value)), value / raw)
                    }
                    _ => figure(Some(*value)),
                };
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{length:.1}\" height=\"{BAR_HEIGHT}\" \
                     fill=\"{}\"><title>{}: {} {}</title></rect>\n\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                    x + LABEL_WIDTH,
                    color(row.variant.server, row.variant.deflate),
                    escape(&row.name),
                    figure(Some(*value)),
                    result.primary_unit(),
                    x + LABEL_WIDTH + length + 4.0,
                    top + BAR_HEIGHT - 5.0,
                    escape(&label)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#c92a2a\">failed</text>",
                    x + LABEL_WIDTH,
                    top + BAR_HEIGHT - 5.0
                );
            }
        }
    }
}

fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(most - 1).collect();
        short.push('…');
        short
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::scenarios;
    use crate::results::Row;
    use crate::runner::Measurement;

    #[test]
    fn panels_bars_and_failures() {
        let results: Vec<ScenarioResult> = scenarios(true)
            .into_iter()
            .map(|scenario| {
                let workload = scenario.workload.clone();
                let rows = scenario
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(index, variant)| Row {
                        variant: *variant,
                        name: variant.name(&workload),
                        rounds: vec![if index == 1 {
                            Err("broken".to_owned())
                        } else {
                            Ok(Measurement {
                                cpu_us_per_msg: 1.0 + index as f64,
                                p99_us: 10.0,
                                kib_per_connection: 3.0,
                                ..Measurement::default()
                            })
                        }],
                    })
                    .collect();
                ScenarioResult { scenario, rows }
            })
            .collect();
        let svg = svg("Benchmarks <smoke>", &results);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;smoke&gt;"));
        assert!(svg.contains(">failed</text>"));
        let panels = svg.matches("font-weight=\"bold\">(").count();
        assert_eq!(panels, results.len());
    }
}
