//! The timeline page's frame (`/`): the controls, with the URL's filters filled in, the places
//! the script draws into, and what the page shows (`Setup`) as JSON for the script, which
//! draws the lanes from the read API (`/assets/timeline.js`).

use std::fmt::Write;

use super::escape_html as escape;
use crate::http::pages::Setup;
use crate::read::OutcomeFilter;

/// JSON safe inside a `<script>` element: no `<` at all (`\u003c` reads the same).
fn script_json(setup: &Setup) -> String {
    serde_json::to_string(setup)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
}

pub fn page(setup: &Setup) -> String {
    let f = &setup.filters;
    let mut html = String::new();
    html.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>dobrobot: releases</title><link rel=\"stylesheet\" href=\"/assets/timeline.css\">\
         </head><body><header><h1>Releases</h1>\
         <nav><a href=\"/\">Timeline</a> · <a href=\"/report\">Report</a> · <a href=\"/api/docs\">API</a></nav>\
         </header><form id=\"controls\" method=\"get\" action=\"/\">",
    );
    html.push_str("<label>Service <select name=\"service\"><option value=\"\">all</option>");
    for lane in &setup.lanes {
        let selected = f.service.as_deref() == Some(lane.service.as_str());
        let _ = write!(
            html,
            "<option{}>{}</option>",
            if selected { " selected" } else { "" },
            escape(&lane.service)
        );
    }
    html.push_str("</select></label>");
    for (name, label, value) in [
        ("ticket", "Ticket", &f.ticket),
        ("actor", "Person", &f.actor),
    ] {
        let _ = write!(
            html,
            "<label>{label} <input name=\"{name}\" size=\"10\" value=\"{}\"></label>",
            escape(value.as_deref().unwrap_or(""))
        );
    }
    html.push_str("<label>Outcome <select name=\"outcome\"><option value=\"\">any</option>");
    for name in OutcomeFilter::NAMES {
        let selected = f.outcome.as_deref() == Some(name);
        let _ = write!(
            html,
            "<option{}>{name}</option>",
            if selected { " selected" } else { "" }
        );
    }
    let _ = write!(
        html,
        "</select></label>\
         <label>Incident at <input name=\"at\" size=\"17\" placeholder=\"2026-11-25T03:12Z\" value=\"{at}\"></label>\
         <label>Window <input name=\"window\" size=\"4\" value=\"{window}\"></label>\
         <button>Show</button></form>\
         <div id=\"toolbar\" role=\"toolbar\" aria-label=\"Time range\">\
         <button type=\"button\" id=\"earlier\" title=\"Earlier (←)\">◀</button>\
         <button type=\"button\" id=\"zoom-out\" title=\"Zoom out (-)\">−</button>\
         <button type=\"button\" id=\"zoom-in\" title=\"Zoom in (+)\">+</button>\
         <button type=\"button\" id=\"later\" title=\"Later (→)\">▶</button>\
         <button type=\"button\" id=\"to-now\">Last 24 hours</button>\
         <span id=\"range\"></span> <span id=\"status\" role=\"status\"></span></div>\
         <main><section id=\"timeline\" aria-label=\"Releases over time\" tabindex=\"-1\">\
         <svg id=\"lanes\" xmlns=\"http://www.w3.org/2000/svg\"></svg>\
         <p class=\"legend\"><i class=\"k-waiting\"></i>waiting <i class=\"k-running\"></i>running \
         <i class=\"k-finished\"></i>finished <i class=\"k-rolled_back\"></i>rolled back \
         <i class=\"k-abandoned\"></i>taken over \
         <i class=\"k-freeze\"></i>freeze <b class=\"k-refused\">×</b> refused \
         <b class=\"k-reminder\">•</b> reminder <b class=\"k-rules\">┆</b> rules changed</p></section>\
         <aside>{what_if}<section id=\"incident\" hidden><h2>Suspects</h2>\
         <p>Permalink: <a id=\"permalink\"></a></p><ol id=\"suspects\"></ol></section>\
         <section id=\"story\" hidden aria-live=\"polite\"><h2 id=\"story-title\"></h2>\
         <button type=\"button\" id=\"story-close\">Close</button>\
         <dl id=\"story-facts\"></dl><ol id=\"story-events\"></ol></section>\
         <section id=\"now\"><h2 id=\"now-title\">Now</h2><h3>Queue</h3><ol id=\"queue\"></ol>\
         <h3>Locks</h3><ul id=\"locks\"></ul></section></aside></main>\
         <script type=\"application/json\" id=\"setup\">{setup}</script>\
         <script src=\"/assets/timeline.js\"></script></body></html>",
        at = escape(
            &setup
                .at
                .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
                .unwrap_or_default()
        ),
        window = compact(setup.window_secs),
        setup = script_json(setup),
        what_if = what_if_section(setup),
    );
    html
}

/// The differences of a what-if, listed beside the lanes (where they are marked too).
fn what_if_section(setup: &Setup) -> String {
    let Some(what_if) = &setup.what_if else {
        return String::new();
    };
    let mut html = format!(
        "<section id=\"what-if\"><h2>What-if</h2><p id=\"what-if-summary\">{} recorded commands \
         decided again under the proposed rules: {}.</p><ol id=\"what-if-list\">",
        what_if.commands,
        match what_if.differences.len() {
            0 => "no difference".to_string(),
            1 => "1 difference".to_string(),
            n => format!("{n} differences"),
        }
    );
    for d in &what_if.differences {
        let _ = write!(
            html,
            "<li class=\"what-if {kind}\" data-kind=\"{kind}\"><time>{at}</time> <b>{ticket}</b> {detail}</li>",
            kind = d.kind,
            at = d.at.format("%Y-%m-%d %H:%M"),
            ticket = escape(d.ticket.as_deref().unwrap_or("")),
            detail = escape(&d.detail),
        );
    }
    html.push_str("</ol><p><a href=\"/what-if\">Try other rules</a></p></section>");
    html
}

/// `/what-if`'s form: the proposed config file's text and the range, posted to `/what-if`.
pub fn what_if_form(policy: &str, since: &str, until: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>dobrobot: what-if</title>\
         <link rel=\"stylesheet\" href=\"/assets/timeline.css\"></head><body>\
         <header><h1>What-if</h1><nav><a href=\"/\">Timeline</a> · <a href=\"/report\">Report</a> · \
         <a href=\"/api/docs\">API</a></nav></header>\
         <p>Paste a proposed config file: the commands recorded in the range are decided again under \
         its rules (roles, services, conflict groups, checks), and the timeline marks what would have \
         gone otherwise. Nothing is recorded. At most {MAX} days.</p>\
         <form id=\"what-if-form\" method=\"post\" action=\"/what-if\">\
         <label>Proposed config<br><textarea name=\"policy\" rows=\"18\" cols=\"80\" required>{policy}</textarea></label><br>\
         <label>Since <input name=\"since\" size=\"17\" value=\"{since}\"></label> \
         <label>Until <input name=\"until\" size=\"17\" placeholder=\"now\" value=\"{until}\"></label> \
         <button>Replay</button></form></body></html>",
        MAX = 31,
        policy = escape(policy),
        since = escape(since),
        until = escape(until),
    )
}

/// A duration as typed: `2h`, `90m`, `45s`.
fn compact(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::pages::{Filters, Lane};
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_frame_keeps_the_filters_and_hands_the_script_safe_json() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 3, 12, 0).unwrap();
        let setup = Setup {
            since: at - chrono::Duration::hours(3),
            until: at,
            live: false,
            at: Some(at),
            window_secs: 5400,
            filters: Filters {
                service: Some("billing".into()),
                ticket: None,
                actor: Some("</script><b>".into()),
                outcome: Some("rolled_back".into()),
            },
            lanes: vec![Lane {
                service: "billing".into(),
                group: Some("backend-core".into()),
            }],
            tracker_url: None,
            what_if: None,
        };
        let html = page(&setup);
        assert!(html.contains("<option selected>billing</option>"));
        assert!(html.contains("<option selected>rolled_back</option>"));
        assert!(html.contains(r#"value="2026-11-25T03:12Z""#));
        assert!(html.contains(r#"value="90m""#));
        assert!(html.contains(r#"value="&lt;/script&gt;&lt;b&gt;""#));
        let json = html.split("id=\"setup\">").nth(1).unwrap();
        let json = json.split("</script>").next().unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["filters"]["actor"], "</script><b>");
        assert_eq!(value["lanes"][0]["group"], "backend-core");
    }
}
