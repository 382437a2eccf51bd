//! The drift report as one self-contained HTML page: the verdict at the top, then a card
//! per feature (drifted first) with both distributions drawn in inline SVG over the bins
//! or categories the report carries. No script, no font, nothing fetched at view time.

use std::fmt::Write as _;

use super::report::{Distribution, FeatureReport, Report};
use crate::stats::Kind;

/// Okabe and Ito's palette (distinct under the common colour-vision deficiencies); the
/// two sides differ by shape too (the current side is drawn narrower and outlined).
const REFERENCE: &str = "#0072B2";
const CURRENT: &str = "#E69F00";

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --drift: #b3261e; --ok: #1a7f37; --quality: #8a4b00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 0 0 6px; display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
a { color: #0550ae; }
.verdict { font-size: 18px; font-weight: 700; margin: 6px 0 10px; }
.verdict.drift, .badge.drift { color: var(--drift); }
.verdict.ok, .badge.ok { color: var(--ok); }
.verdict.quality, .badge.quality { color: var(--quality); }
.badge { font-size: 12px; font-weight: 700; border: 1.5px solid currentColor; border-radius: 4px; padding: 0 6px; letter-spacing: .04em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.notice { border-left: 4px solid var(--quality); background: #fff8e6; padding: 6px 10px; margin: 6px 0; }
.notice.error { border-color: var(--drift); background: #fdecea; }
.feature { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 14px 0; break-inside: avoid; page-break-inside: avoid; }
.feature.drifted { border-left: 6px solid var(--drift); }
.card { display: grid; grid-template-columns: minmax(0, 640px) minmax(220px, 1fr); gap: 12px 20px; align-items: start; }
svg.chart { width: 100%; height: auto; max-width: 640px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; fill: var(--ink); }
table.numbers { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.numbers th { text-align: left; font-weight: normal; color: var(--muted); padding: 1px 12px 1px 0; }
table.numbers td { text-align: right; padding: 1px 0; }
table.models { border-collapse: collapse; width: 100%; }
table.models th, table.models td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
@media (max-width: 760px) { .card { grid-template-columns: 1fr; } }
@media print { body { max-width: none; padding: 0; } .feature { border-color: #999; } a { color: inherit; text-decoration: none; } }
"#;

/// What a page shows besides the report.
#[derive(Debug, Default)]
pub struct Page<'a> {
    pub title: String,
    /// Shown above the report's own facts (a window's model, bounds, events), label → value.
    pub facts: Vec<(String, String)>,
    /// Warnings at the top: data-quality failures, the window's error.
    pub notices: Vec<Notice>,
    pub report: Option<&'a Report>,
    /// The verdict to show when the report's would mislead (a window whose data failed
    /// the quality rule is neither drifted nor clean).
    pub verdict: Option<(String, &'static str)>,
}

#[derive(Debug)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// `analyze`'s report as a page.
pub fn analyze_page(report: &Report) -> String {
    render(&Page { title: "Drift report".into(), report: Some(report), ..Page::default() })
}

/// A whole document around `body`, with the shared styles.
pub fn document(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 512);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\
         <footer>driftd {} · generated {}</footer>\n</body>\n</html>\n",
        escape(title),
        env!("CARGO_PKG_VERSION"),
        now_rfc3339(),
    );
    out
}

pub fn render(page: &Page) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<header>\n<h1>{}</h1>", escape(&page.title));
    let verdict = match (&page.verdict, page.report) {
        (Some((text, class)), _) => Some((text.clone(), *class)),
        (None, Some(r)) if r.dataset_drift => Some(("Dataset drift".to_string(), "drift")),
        (None, Some(_)) => Some(("No dataset drift".to_string(), "ok")),
        (None, None) => None,
    };
    if let Some((text, class)) = verdict {
        let _ = writeln!(body, "<p class=\"verdict {class}\" id=\"verdict\">{}</p>", escape(&text));
    }
    for n in &page.notices {
        let class = if n.error { "notice error" } else { "notice" };
        let _ = writeln!(body, "<p class=\"{class}\">{}</p>", escape(&n.text));
    }
    let mut facts = page.facts.clone();
    if let Some(r) = page.report {
        facts.extend(report_facts(r));
    }
    body.push_str("<dl class=\"facts\">\n");
    for (label, value) in &facts {
        let _ = writeln!(body, "<dt>{}</dt><dd>{}</dd>", escape(label), value);
    }
    body.push_str("</dl>\n</header>\n<main>\n");
    if let Some(r) = page.report {
        let mut order: Vec<&FeatureReport> = r.features.iter().filter(|f| f.drifted).collect();
        order.extend(r.features.iter().filter(|f| !f.drifted));
        for f in order {
            feature_card(&mut body, f);
        }
        if !r.skipped.is_empty() {
            body.push_str("<section class=\"skipped\"><h2>Not compared</h2><ul>\n");
            for s in &r.skipped {
                let _ = writeln!(body, "<li><b>{}</b>: {}</li>", escape(&s.name), escape(&s.reason));
            }
            body.push_str("</ul></section>\n");
        }
    }
    body.push_str("</main>\n");
    document(&page.title, &body)
}

/// The dataset's facts: share against its threshold, features, sizes, mode and tests. The
/// values are HTML already.
fn report_facts(r: &Report) -> Vec<(String, String)> {
    let rule = match r.dataset_rule {
        "bh" => "any feature drifted after Benjamini-Hochberg".to_string(),
        _ => format!("share ≥ {}", num_span("drift-share-threshold", r.drift_share_threshold)),
    };
    let mut tests: Vec<&str> = r.features.iter().map(|f| f.stattest.name()).collect();
    tests.sort_unstable();
    tests.dedup();
    let side = |s: &super::report::Source| {
        let mut v = format!("{} · <span class=\"rows\">{}</span> rows", escape(&s.path), s.rows);
        if let Some(version) = &s.version {
            let _ = write!(v, " · version {}", escape(version));
        }
        v
    };
    vec![
        (
            "Drifted features".into(),
            format!(
                "<span id=\"drifted-features\">{}</span> of <span id=\"features-total\">{}</span>",
                r.drifted_features, r.features_total
            ),
        ),
        (
            "Drift share".into(),
            format!("{} (dataset drift when {rule})", num_span("drift-share", r.share_of_drifted_features)),
        ),
        ("Reference".into(), side(&r.reference)),
        ("Current".into(), side(&r.current)),
        ("Mode".into(), escape(r.mode)),
        ("Tests".into(), escape(&tests.join(", "))),
    ]
}

fn feature_card(out: &mut String, f: &FeatureReport) {
    let (class, badge) = if f.drifted { ("feature drifted", "drift") } else { ("feature", "ok") };
    let _ = writeln!(
        out,
        "<section class=\"{class}\" data-feature=\"{}\" data-drifted=\"{}\">",
        escape(&f.name),
        f.drifted
    );
    let _ = writeln!(
        out,
        "<h2><span class=\"name\">{}</span> <span class=\"badge {badge}\">{}</span> \
         <span class=\"muted\">{} · {}</span></h2>",
        escape(&f.name),
        if f.drifted { "DRIFTED" } else { "no drift" },
        f.kind.as_str(),
        escape(f.stattest.name()),
    );
    out.push_str("<div class=\"card\">\n");
    match &f.distribution {
        Some(d) => chart(out, f, d),
        None => out.push_str("<p class=\"muted\">No distribution in this report.</p>\n"),
    }
    numbers_table(out, f);
    out.push_str("</div>\n</section>\n");
}

fn numbers_table(out: &mut String, f: &FeatureReport) {
    let direction = if f.stattest.is_pvalue() { "drift below" } else { "drift at ≥" };
    let mut rows: Vec<(&str, String)> = vec![
        ("score", num_span("score", f.score)),
        (
            "threshold",
            format!(
                "{} <span class=\"muted\">{}, {direction}</span>",
                num_span("threshold", f.threshold),
                f.threshold_source
            ),
        ),
        ("statistic", num_span("statistic", f.statistic)),
    ];
    if let Some(p) = f.p_value {
        rows.push(("p-value", num_span("p-value", p)));
    }
    if let Some(e) = f.min_effect {
        rows.push(("smallest effect flagged", num_span("min-effect", e)));
    }
    if let Some(e) = f.effect {
        rows.push(("effect", num_span("effect", e)));
    }
    rows.push(("values, reference", format!("<span class=\"reference-count\">{}</span>", f.reference_count)));
    rows.push(("values, current", format!("<span class=\"current-count\">{}</span>", f.current_count)));
    rows.push(("missing, reference", pct_span("reference-missing", f.reference_missing_share)));
    rows.push(("missing, current", pct_span("current-missing", f.current_missing_share)));
    if let Some(s) = f.current_invalid_share {
        rows.push(("wrong type, current", pct_span("current-invalid", s)));
    }
    if let Some(s) = f.current_out_of_range_share {
        rows.push(("outside the reference's range", pct_span("current-out-of-range", s)));
    }
    if let Some(s) = f.current_unseen_share {
        rows.push(("categories the reference lacks", pct_span("current-unseen", s)));
    }
    let path = match f.error_bound {
        Some(b) => format!("{} (error ≤ {})", f.path, num_span("error-bound", b)),
        None => f.path.to_string(),
    };
    rows.push(("computed", path));
    out.push_str("<table class=\"numbers\">\n");
    for (label, value) in rows {
        let _ = writeln!(out, "<tr><th>{label}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>\n");
}

/// A number as shown (four significant digits), with its exact value beside it for
/// machines (`data-value`).
fn num_span(class: &str, x: f64) -> String {
    format!("<span class=\"{class}\" data-value=\"{}\">{}</span>", json_number(x), fmt_num(x))
}

fn pct_span(class: &str, share: f64) -> String {
    format!("<span class=\"{class}\" data-value=\"{}\">{}%</span>", json_number(share), fmt_num(share * 100.0))
}

/// The value as the JSON report writes it (`null` for NaN and infinities).
fn json_number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| "null".into())
}

/// Four significant digits; scientific notation for the very small and very large.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "n/a".into()
        } else if x > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

// --- the chart ---

const W: f64 = 640.0;
const H: f64 = 270.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 66.0;

fn chart(out: &mut String, f: &FeatureReport, d: &Distribution) {
    let total = |v: &[u64]| v.iter().sum::<u64>().max(1) as f64;
    let (nr, nc) = (total(&d.reference), total(&d.current));
    let shares_r: Vec<f64> = d.reference.iter().map(|c| *c as f64 / nr * 100.0).collect();
    let shares_c: Vec<f64> = d.current.iter().map(|c| *c as f64 / nc * 100.0).collect();
    let n = shares_r.len().max(1);
    let top = nice_ceiling(shares_r.iter().chain(&shares_c).cloned().fold(0.0, f64::max));
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let slot = plot_w / n as f64;
    let y = |share: f64| TOP + plot_h * (1.0 - share / top);
    let categorical = d.categories.is_some();
    let label = format!(
        "{}: share of values per {}, reference in blue, current in orange",
        f.name,
        if categorical { "category" } else { "bin" }
    );
    let _ = writeln!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" data-bins=\"{n}\">",
        escape(&label)
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&label));
    // legend
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{REFERENCE}\" fill-opacity=\"0.55\"/>\
         <text x=\"{}\" y=\"18\">reference (n = {})</text>\
         <rect x=\"{}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{CURRENT}\" fill-opacity=\"0.85\" stroke=\"#5c3d00\"/>\
         <text x=\"{}\" y=\"18\">current (n = {})</text>",
        LEFT + 16.0,
        nr as u64,
        LEFT + 190.0,
        LEFT + 206.0,
        nc as u64
    );
    // y grid and ticks
    for i in 0..=4 {
        let v = top * i as f64 / 4.0;
        let yy = y(v);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d7de\" stroke-width=\"{}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            if i == 0 { 1.2 } else { 0.6 },
            LEFT - 6.0,
            yy + 4.0,
            fmt_num(v)
        );
    }
    let _ = writeln!(
        out,
        "<text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">share of values (%)</text>",
        TOP + plot_h / 2.0
    );
    // bars
    for i in 0..n {
        let x0 = LEFT + slot * i as f64;
        let (sr, sc) = (shares_r.get(i).copied().unwrap_or(0.0), shares_c.get(i).copied().unwrap_or(0.0));
        let what = bin_label(d, i);
        let tip = format!(
            "{what}: reference {} ({}%), current {} ({}%)",
            d.reference.get(i).unwrap_or(&0),
            fmt_num(sr),
            d.current.get(i).unwrap_or(&0),
            fmt_num(sc)
        );
        let (rx, rw, cx, cw) = match categorical {
            // side by side
            true => (x0 + slot * 0.1, slot * 0.4, x0 + slot * 0.5, slot * 0.4),
            // overlaid: the reference fills its bin, the current is narrower on top
            false => (x0 + 1.0, slot - 2.0, x0 + slot * 0.22, slot * 0.56),
        };
        let _ = writeln!(
            out,
            "<g class=\"bin\"><title>{}</title>\
             <rect class=\"ref\" x=\"{rx:.1}\" y=\"{:.1}\" width=\"{rw:.1}\" height=\"{:.1}\" fill=\"{REFERENCE}\" fill-opacity=\"0.55\"/>\
             <rect class=\"cur\" x=\"{cx:.1}\" y=\"{:.1}\" width=\"{cw:.1}\" height=\"{:.1}\" fill=\"{CURRENT}\" fill-opacity=\"0.85\" stroke=\"#5c3d00\" stroke-width=\"0.8\"/></g>",
            escape(&tip),
            y(sr),
            (TOP + plot_h - y(sr)).max(0.0),
            y(sc),
            (TOP + plot_h - y(sc)).max(0.0),
        );
    }
    x_labels(out, d, n, slot, TOP + plot_h);
    let axis = match categorical {
        true => format!("{} (category)", f.name),
        false if f.kind == Kind::Numerical => format!("{} (value; bins drawn equal width, edges labelled)", f.name),
        false => f.name.clone(),
    };
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        H - 6.0,
        escape(&axis)
    );
    out.push_str("</svg>\n");
}

/// The x axis: each category under its bars, or the bins' edges at their boundaries (as
/// many as fit).
fn x_labels(out: &mut String, d: &Distribution, n: usize, slot: f64, base: f64) {
    if let Some(cats) = &d.categories {
        let rotate = n > 6;
        for (i, c) in cats.iter().enumerate() {
            let text = match (i + 1 == cats.len(), d.other_categories) {
                (true, k) if k > 0 => format!("other ({k})"),
                _ => shorten(c, if rotate { 14 } else { 18 }),
            };
            let x = LEFT + slot * (i as f64 + 0.5);
            let _ = match rotate {
                true => writeln!(
                    out,
                    "<text transform=\"translate({x:.1} {:.1}) rotate(-35)\" text-anchor=\"end\">{}</text>",
                    base + 14.0,
                    escape(&text)
                ),
                false => writeln!(
                    out,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    base + 16.0,
                    escape(&text)
                ),
            };
        }
        return;
    }
    let Some(edges) = &d.edges else { return };
    let every = ((56.0 / slot).ceil() as usize).max(1);
    let last = edges.len().saturating_sub(1);
    for (i, e) in edges.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base:.1}\" y2=\"{:.1}\" stroke=\"#57606a\"/>",
            base + 4.0
        );
        match e {
            // an open end: what its bin holds, under the bin
            None => {
                let (text, mid) = if i == 0 { ("below", x + slot / 2.0) } else { ("above", x - slot / 2.0) };
                let _ = writeln!(
                    out,
                    "<text x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"muted\">{text}</text>",
                    base + 30.0
                );
            }
            // the edges: the first and last finite ones, and as many between as fit
            Some(v) => {
                let (first, final_) = (edges[0].is_none() as usize, last - edges[last].is_none() as usize);
                let shown = i == first || i == final_ || ((i - first) % every == 0 && i + every / 2 < final_);
                if shown {
                    let anchor = match i {
                        0 => "start",
                        _ if i == last => "end",
                        _ => "middle",
                    };
                    let _ = writeln!(
                        out,
                        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                        base + 16.0,
                        fmt_num(*v)
                    );
                }
            }
        }
    }
}

/// What bin or category `i` holds, in words.
fn bin_label(d: &Distribution, i: usize) -> String {
    if let Some(cats) = &d.categories {
        return match (i + 1 == cats.len(), d.other_categories) {
            (true, k) if k > 0 => format!("{k} other categories"),
            _ => cats.get(i).cloned().unwrap_or_default(),
        };
    }
    let edges = d.edges.as_deref().unwrap_or_default();
    match (edges.get(i).copied().flatten(), edges.get(i + 1).copied().flatten()) {
        (Some(a), Some(b)) => format!("[{}, {})", fmt_num(a), fmt_num(b)),
        (None, Some(b)) => format!("below {}", fmt_num(b)),
        (Some(a), None) => format!("above {}", fmt_num(a)),
        (None, None) => "all values".into(),
    }
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `x` (100 at most).
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|v| *v >= x - 1e-9).unwrap_or(10.0 * p);
    nice.min(100.0)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    crate::time::format_rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_four_significant_digits() {
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(1234.56), "1235");
        assert_eq!(fmt_num(0.00012), "1.200e-4");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(f64::NAN), "n/a");
    }

    #[test]
    fn the_y_axis_ends_at_a_round_share() {
        assert_eq!(nice_ceiling(9.3), 10.0);
        assert_eq!(nice_ceiling(10.4), 20.0);
        assert_eq!(nice_ceiling(22.0), 25.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    /// Column names, categories and paths come from the data: none of them becomes markup.
    #[test]
    fn names_from_the_data_stay_text() {
        use crate::analysis::report::{Mode, Sample, Source};
        use crate::stats::{Outcome, StatTest};
        let evil = "<img src=x onerror=alert(1)>";
        let mut f = FeatureReport::new(
            evil,
            Kind::Categorical,
            StatTest::JensenShannon,
            0.1,
            Outcome::distance(0.5),
            Sample::new(10, 0.0),
            Sample::new(10, 0.0),
        );
        let labels = vec!["</svg><script>alert(1)</script>".to_string(), "b".to_string()];
        f.distribution = Some(Distribution::categories(labels, &[5.0, 5.0], &[9.0, 1.0]));
        let source = Source::new(format!("/data/{evil}.csv"), 10);
        let report = Report::new(Mode::Native, source.clone(), source, vec![f], Vec::new(), 0.5);
        let page = analyze_page(&report);
        assert!(!page.contains("<img") && !page.contains("<script"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 1);
    }

    #[test]
    fn many_categories_keep_the_most_common_and_sum_the_rest() {
        use crate::analysis::report::DRAWN_CATEGORIES;
        let labels: Vec<String> = (0..30).map(|i| format!("c{i:02}")).collect();
        let reference: Vec<f64> = (0..30).map(|i| if i < 10 { 100.0 } else { 1.0 }).collect();
        // the current side's largest category is one the reference barely has
        let current: Vec<f64> = (0..30).map(|i| if i == 29 { 500.0 } else { 2.0 }).collect();
        let d = Distribution::categories(labels, &reference, &current);
        let cats = d.categories.as_ref().unwrap();
        assert_eq!(cats.len(), DRAWN_CATEGORIES);
        assert_eq!(cats.last().unwrap(), "other");
        assert_eq!(d.other_categories, 30 - (DRAWN_CATEGORIES - 1));
        assert!(cats.contains(&"c29".to_string()), "the current side's new mode is drawn: {cats:?}");
        assert_eq!(d.reference.iter().sum::<u64>(), 1020, "nothing lost into 'other'");
        assert_eq!(d.current.iter().sum::<u64>(), 558);
    }
}
