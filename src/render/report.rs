//! The report page (`/report`): the delivery figures as charts drawn in SVG here, on the
//! server, and the table of every row. No script and nothing fetched: the page works offline
//! and prints. The colours are the Okabe–Ito palette, which colour-blind readers tell apart, and
//! every bar carries its value in a `<title>` (a tooltip) and in `data-` attributes.

use std::fmt::Write;

use super::escape_html as escape;
use crate::read::report::{Figures, Per, ReportQuery, Spread};
use crate::read::rows::Row;

/// Okabe–Ito: blue, orange, bluish green, vermillion, reddish purple.
const BLUE: &str = "#0072B2";
const ORANGE: &str = "#E69F00";
const GREEN: &str = "#009E73";
const VERMILLION: &str = "#D55E00";
const PURPLE: &str = "#CC79A7";

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;

/// One series of a chart: its name, colour and a value per period.
struct Series<'a> {
    name: &'a str,
    colour: &'a str,
    values: Vec<Option<f64>>,
}

/// How a chart's values read.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Percent,
    Seconds,
}

impl Unit {
    /// The divisor and suffix the axis uses for values up to `max`.
    fn scale(self, max: f64) -> (f64, &'static str) {
        match self {
            Unit::Count => (1.0, ""),
            Unit::Percent => (0.01, "%"),
            Unit::Seconds if max >= 3.0 * 86_400.0 => (86_400.0, "d"),
            Unit::Seconds if max >= 2.0 * 3_600.0 => (3_600.0, "h"),
            Unit::Seconds if max >= 120.0 => (60.0, "m"),
            Unit::Seconds => (1.0, "s"),
        }
    }

    fn label(self, value: f64) -> String {
        match self {
            Unit::Count => format!("{value}"),
            Unit::Percent => format!("{:.1}%", value * 100.0),
            Unit::Seconds => super::span(value as i64),
        }
    }
}

/// The whole page for `rows` of `query`.
pub fn page(query: &ReportQuery, rows: &[Figures], services: &[String]) -> String {
    // The charts show one service, or all together.
    let shown: Vec<&Figures> = rows.iter().filter(|r| r.service == query.service).collect();
    let labels: Vec<String> = shown
        .iter()
        .map(|r| match query.per {
            Per::Day | Per::Week => r.period_start.format("%b %d").to_string(),
            Per::Range => format!(
                "{} – {}",
                r.period_start.format("%b %d"),
                r.period_end.format("%b %d")
            ),
        })
        .collect();
    let count = |f: fn(&Figures) -> usize| shown.iter().map(|r| Some(f(r) as f64)).collect();
    let spread = |f: fn(&Figures) -> Spread, p90: bool| {
        shown
            .iter()
            .map(|r| {
                let s = f(r);
                (if p90 { s.p90_secs } else { s.median_secs }).map(|v| v as f64)
            })
            .collect()
    };
    // A spread's median and 90th percentile, as the two series of a chart.
    let median_and_p90 = |f: fn(&Figures) -> Spread| {
        [
            Series {
                name: "median",
                colour: BLUE,
                values: spread(f, false),
            },
            Series {
                name: "90th percentile",
                colour: ORANGE,
                values: spread(f, true),
            },
        ]
    };
    let mut html = String::new();
    let title = match &query.service {
        Some(service) => format!("Delivery figures: {service}"),
        None => "Delivery figures: all services".to_string(),
    };
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <nav><a href=\"/\">Timeline</a> · <a href=\"/report\">Report</a> · <a href=\"/api/docs\">API</a></nav>\
         <h1>{title}</h1>",
        title = escape(&title)
    );
    form(&mut html, query, services);
    let _ = write!(
        html,
        "<p class=\"range\">{} to {}, per {}. <a href=\"{}\">CSV</a> (<code>Accept: text/csv</code> on <code>/api/v1/report</code>).</p>",
        query.since.format("%Y-%m-%d %H:%M UTC"),
        query.until.format("%Y-%m-%d %H:%M UTC"),
        query.per.name(),
        escape(&api_link(query)),
    );
    html.push_str("<div class=\"charts\">");
    chart(
        &mut html,
        "deployments",
        "Deployments",
        &labels,
        &[
            Series {
                name: "finished",
                colour: BLUE,
                values: shown
                    .iter()
                    .map(|r| Some((r.deployments - r.rollbacks) as f64))
                    .collect(),
            },
            Series {
                name: "rolled back",
                colour: ORANGE,
                values: count(|r| r.rollbacks),
            },
        ],
        true,
        Unit::Count,
    );
    chart(
        &mut html,
        "change-failure-rate",
        "Change-failure rate",
        &labels,
        &[Series {
            name: "rolled back / deployments",
            colour: VERMILLION,
            values: shown.iter().map(|r| r.change_failure_rate).collect(),
        }],
        false,
        Unit::Percent,
    );
    chart(
        &mut html,
        "lead-time",
        "Lead time, request to finish",
        &labels,
        &median_and_p90(|r| r.lead_time),
        false,
        Unit::Seconds,
    );
    chart(
        &mut html,
        "waits",
        "Waits (medians)",
        &labels,
        &[
            Series {
                name: "for approval",
                colour: BLUE,
                values: spread(|r| r.approval_wait, false),
            },
            Series {
                name: "for an admin",
                colour: GREEN,
                values: spread(|r| r.admin_wait, false),
            },
            Series {
                name: "for a lock",
                colour: PURPLE,
                values: spread(|r| r.lock_wait, false),
            },
        ],
        false,
        Unit::Seconds,
    );
    chart(
        &mut html,
        "time-to-restore",
        "Time to restore, rollback to the next finished deployment",
        &labels,
        &median_and_p90(|r| r.time_to_restore),
        false,
        Unit::Seconds,
    );
    html.push_str("</div><h2>Every row</h2><div class=\"table\"><table id=\"figures\"><thead><tr>");
    for header in Figures::HEADERS {
        let _ = write!(html, "<th>{}</th>", escape(header));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row.cells() {
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>");
    }
    html.push_str(
        "</tbody></table></div><p class=\"how\">How each figure is computed: the README's \
         <em>Delivery figures</em>. Medians and 90th percentiles are by nearest rank.</p></body></html>",
    );
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#222}\
nav{margin-bottom:1rem}form{display:flex;gap:1rem;flex-wrap:wrap;align-items:end}\
label{display:flex;flex-direction:column;font-size:.85rem}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1.5rem}\
figure{margin:0}figcaption{font-weight:600;margin-bottom:.25rem}\
svg text{font-size:11px;fill:#333}.legend span{margin-right:1rem;font-size:.85rem}\
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
.table{overflow:auto}table{border-collapse:collapse;font-size:.8rem}\
td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:right;white-space:nowrap}";

fn api_link(query: &ReportQuery) -> String {
    let mut link = format!(
        "/api/v1/report?since={}&until={}&per={}",
        encode(&query.since.to_rfc3339()),
        encode(&query.until.to_rfc3339()),
        query.per.name()
    );
    if let Some(service) = &query.service {
        let _ = write!(link, "&service={}", encode(service.as_str()));
    }
    link
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The question, as a form whose submission is the page's URL (so a report is a link).
fn form(html: &mut String, query: &ReportQuery, services: &[String]) {
    let _ = write!(
        html,
        "<form method=\"get\" action=\"/report\">\
         <label>Since <input name=\"since\" value=\"{since}\"></label>\
         <label>Until <input name=\"until\" value=\"{until}\"></label>\
         <label>Service <select name=\"service\"><option value=\"\">all</option>",
        since = escape(&query.since.format("%Y-%m-%d %H:%M").to_string()),
        until = escape(&query.until.format("%Y-%m-%d %H:%M").to_string()),
    );
    for service in services {
        let selected = query
            .service
            .as_ref()
            .is_some_and(|s| s.as_str() == service);
        let _ = write!(
            html,
            "<option{}>{}</option>",
            if selected { " selected" } else { "" },
            escape(service)
        );
    }
    html.push_str("</select></label><label>Per <select name=\"per\">");
    for per in Per::NAMES {
        let selected = per == query.per.name();
        let _ = write!(
            html,
            "<option{}>{per}</option>",
            if selected { " selected" } else { "" }
        );
    }
    html.push_str("</select></label><button>Show</button></form>");
}

/// A bar chart: a group of bars per period (stacked when `stacked`), an axis with four ticks,
/// a legend.
fn chart(
    html: &mut String,
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    stacked: bool,
    unit: Unit,
) {
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| {
            let values = series.iter().map(|s| s.values[i].unwrap_or(0.0));
            if stacked {
                values.sum()
            } else {
                values.fold(0.0, f64::max)
            }
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let (divisor, suffix) = unit.scale(max);
    // Four ticks a round number apart (a whole number for counts).
    let mut step = nice_ceiling((max / divisor / 4.0).max(0.25));
    if matches!(unit, Unit::Count) {
        step = step.ceil();
    }
    let top = 4.0 * step * divisor;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let plot_width = WIDTH - LEFT - 8.0;
    let y = |value: f64| TOP + plot_height * (1.0 - value / top);
    let _ = write!(
        html,
        "<figure id=\"{id}\"><figcaption>{title}</figcaption>\
         <svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{title}\" width=\"100%\">",
        id = escape(id),
        title = escape(title)
    );
    for tick in 0..=4 {
        let value = top * f64::from(tick) / 4.0;
        let _ = write!(
            html,
            "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}{suffix}</text>",
            right = WIDTH - 8.0,
            y = y(value),
            x = LEFT - 4.0,
            ty = y(value) + 4.0,
            label = trim(value / divisor),
        );
    }
    let slot = plot_width / labels.len().max(1) as f64;
    let bars = if stacked { 1 } else { series.len() };
    let bar_width = (slot * 0.8 / bars as f64).max(1.0);
    for (i, label) in labels.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + slot * 0.1;
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let Some(value) = s.values[i] else { continue };
            let x = if stacked {
                x0
            } else {
                x0 + bar_width * k as f64
            };
            let (from, to) = if stacked {
                (base, base + value)
            } else {
                (0.0, value)
            };
            base = to;
            let _ = write!(
                html,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{colour}\" \
                 data-period=\"{period}\" data-series=\"{name}\" data-value=\"{value}\">\
                 <title>{period}, {name}: {shown}</title></rect>",
                top = y(to),
                w = bar_width,
                h = (y(from) - y(to)).max(0.0),
                colour = s.colour,
                period = escape(label),
                name = escape(s.name),
                shown = escape(&unit.label(value)),
            );
        }
        // At most about twelve labels on the axis.
        if i % labels.len().div_ceil(12).max(1) == 0 {
            let _ = write!(
                html,
                "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\">{label}</text>",
                x = LEFT + slot * (i as f64 + 0.5),
                y = HEIGHT - BOTTOM + 16.0,
                label = escape(label)
            );
        }
    }
    html.push_str("</svg><div class=\"legend\">");
    for s in series {
        let _ = write!(
            html,
            "<span><i style=\"background:{}\"></i>{}</span>",
            s.colour,
            escape(s.name)
        );
    }
    html.push_str("</div></figure>");
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= value)
        .unwrap_or(value)
}

fn trim(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn row(deployments: usize, rollbacks: usize) -> Figures {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        Figures {
            period_start: start,
            period_end: start + chrono::Duration::weeks(1),
            service: None,
            deployments,
            rollbacks,
            change_failure_rate: Some(rollbacks as f64 / deployments as f64),
            lead_time: Spread::of(vec![3_600, 7_200]),
            approval_wait: Spread::default(),
            admin_wait: Spread::default(),
            lock_wait: Spread::default(),
            time_to_restore: Spread::default(),
            unrestored: 0,
        }
    }

    #[test]
    fn bars_carry_their_values_and_heights_follow_them() {
        let query = ReportQuery {
            since: Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2026, 3, 16, 0, 0, 0).unwrap(),
            service: None,
            per: Per::Week,
        };
        let html = page(&query, &[row(4, 1), row(8, 0)], &["billing".into()]);
        assert!(
            html.contains(r#"data-series="finished" data-value="3""#),
            "{html}"
        );
        assert!(html.contains(r#"data-series="rolled back" data-value="1""#));
        assert!(!html.contains(r#"data-series="finished" data-value="7""#));
        assert!(html.contains(r#"data-series="finished" data-value="8""#));
        // 8 is the tallest: the scale goes to 8 in steps of 2, and its bar to the top; the
        // median lead time (1 h) reaches half way up a scale of 2 h.
        let plot = HEIGHT - TOP - BOTTOM;
        assert!(html.contains(&format!("height=\"{plot:.1}\"")), "{html}");
        assert!(html.contains(&format!("height=\"{:.1}\"", plot / 2.0)));
        assert!(html.contains(">6</text>") && !html.contains(">7.5</text>"));
        assert!(html.contains("<option>billing</option>"));
        assert!(!html.contains("<script"), "no script on the report page");
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(8.0), 10.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(24.0), 25.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(Unit::Seconds.scale(3.0 * 3_600.0), (3_600.0, "h"));
    }
}
