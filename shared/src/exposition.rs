//! The two text forms of Prometheus metrics and the choice between them by `Accept`.
//!
//! Both services encode their registries with `prometheus-client`, which writes only
//! OpenMetrics 1.0. Prometheus asks for OpenMetrics first, but other scrapers, `curl` and
//! `promtool check metrics` read the classic text format (0.0.4), and some reject OpenMetrics'
//! differences: a counter's family is named without `_total`, `# EOF` ends the text, `# UNIT`
//! lines and `unknown`/`info`/`stateset` types exist. [`to_classic`] rewrites one into the other
//! so that a scrape gets what it asked for.

use std::collections::HashMap;

/// A text form of metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4, for any client that does not ask for OpenMetrics.
    Classic,
    OpenMetrics,
}

impl Format {
    /// The form an `Accept` header asks for: OpenMetrics when it names it with a weight at
    /// least that of `text/plain`, the classic format otherwise (no header, `*/*`, `text/plain`).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut q_open, mut q_text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => q_open = q_open.max(q),
                "text/plain" => q_text = q_text.max(q),
                _ => {}
            }
        }
        if q_open > 0.0 && q_open >= q_text {
            Self::OpenMetrics
        } else {
            Self::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// `openmetrics` (the text `prometheus-client` wrote) in this form.
    pub fn render(self, openmetrics: String) -> String {
        match self {
            Self::Classic => to_classic(&openmetrics),
            Self::OpenMetrics => openmetrics,
        }
    }
}

/// What a family of OpenMetrics becomes in the classic format.
struct Family<'a> {
    /// The classic type name.
    kind: &'static str,
    /// The family's name there: a counter's samples end in `_total` and so must its family.
    name: String,
    /// OpenMetrics' own name, which the `_created` samples (not in the classic format) carry.
    openmetrics_name: &'a str,
}

/// Rewrites OpenMetrics text into the classic text format 0.0.4.
pub fn to_classic(openmetrics: &str) -> String {
    let families: HashMap<&str, Family<'_>> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name, family(name, kind)))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = families.get(name).map_or(name, |f| f.name.as_str());
            // OpenMetrics escapes `"` in help; the classic format does not.
            out.push_str(&format!("# HELP {name} {}\n", help.replace("\\\"", "\"")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(n, _)| n);
            if let Some(f) = families.get(name) {
                out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind));
            }
        } else if line.starts_with('#') || line.is_empty() {
            // `# EOF`, `# UNIT` and other comments have no classic form.
        } else if let Some(sample) = sample(line, &families) {
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

fn family<'a>(name: &'a str, kind: &str) -> Family<'a> {
    let (kind, suffix) = match kind {
        "counter" => ("counter", "_total"),
        "gauge" => ("gauge", ""),
        "histogram" => ("histogram", ""),
        "summary" => ("summary", ""),
        "info" => ("gauge", "_info"),
        "stateset" => ("gauge", ""),
        _ => ("untyped", ""),
    };
    Family {
        kind,
        name: format!("{name}{suffix}"),
        openmetrics_name: name,
    }
}

/// A sample line without what the classic format lacks (`_created` samples, exemplars and
/// OpenMetrics' timestamps in seconds), or `None` to leave it out.
fn sample<'a>(line: &'a str, families: &HashMap<&str, Family<'_>>) -> Option<&'a str> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    let is_created = name.strip_suffix("_created").is_some_and(|base| {
        families
            .values()
            .any(|f| f.openmetrics_name == base && f.kind != "gauge" && f.kind != "untyped")
    });
    if is_created {
        return None;
    }
    let labels_end = if line[name_end..].starts_with('{') {
        name_end + labels_len(&line[name_end..])?
    } else {
        name_end
    };
    let rest = line[labels_end..].trim_start();
    let value = rest.split(' ').next().filter(|v| !v.is_empty())?;
    let end = labels_end + (line[labels_end..].len() - rest.len()) + value.len();
    Some(&line[..end])
}

/// The length of `{…}` at the start of `s`, quoted label values (with their escapes) included.
fn labels_len(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, '}') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shapes prometheus-client writes; the services' tests judge the real output with
    // Prometheus' own parsers and promtool.
    const OPEN: &str = "# HELP modori_ops_applied Ops applied, per site.\n\
        # TYPE modori_ops_applied counter\n\
        modori_ops_applied_total{site=\"osaka\"} 3\n\
        modori_ops_applied_created{site=\"osaka\"} 1700000000.0\n\
        # HELP modori_up Says \\\"up\\\".\n\
        # TYPE modori_up gauge\n\
        # UNIT modori_up seconds\n\
        modori_up 1\n\
        # HELP modori_build Build.\n\
        # TYPE modori_build info\n\
        modori_build_info{version=\"1 # {x}\"} 1\n\
        # HELP modori_http Latency.\n\
        # TYPE modori_http histogram\n\
        modori_http_sum{route=\"/a}\\\"\"} 0.5\n\
        modori_http_count{route=\"/a}\\\"\"} 1\n\
        modori_http_bucket{le=\"+Inf\",route=\"/a}\\\"\"} 1 # {trace_id=\"x\"} 0.5 1.0\n\
        # HELP modori_odd Odd.\n\
        # TYPE modori_odd unknown\n\
        modori_odd 2 1700000000.5\n\
        # EOF\n";

    #[test]
    fn openmetrics_becomes_the_classic_format() {
        let want = "# HELP modori_ops_applied_total Ops applied, per site.\n\
            # TYPE modori_ops_applied_total counter\n\
            modori_ops_applied_total{site=\"osaka\"} 3\n\
            # HELP modori_up Says \"up\".\n\
            # TYPE modori_up gauge\n\
            modori_up 1\n\
            # HELP modori_build_info Build.\n\
            # TYPE modori_build_info gauge\n\
            modori_build_info{version=\"1 # {x}\"} 1\n\
            # HELP modori_http Latency.\n\
            # TYPE modori_http histogram\n\
            modori_http_sum{route=\"/a}\\\"\"} 0.5\n\
            modori_http_count{route=\"/a}\\\"\"} 1\n\
            modori_http_bucket{le=\"+Inf\",route=\"/a}\\\"\"} 1\n\
            # HELP modori_odd Odd.\n\
            # TYPE modori_odd untyped\n\
            modori_odd 2\n";
        assert_eq!(to_classic(OPEN), want);
    }

    #[test]
    fn accept_chooses_the_form() {
        use Format::*;
        // What Prometheus 2.x and 3.x send.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
            version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (None, Classic),
            (Some(""), Classic),
            (Some("*/*"), Classic),
            (Some("text/plain"), Classic),
            (
                Some("text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5"),
                Classic,
            ),
            (Some("application/openmetrics-text;q=0"), Classic),
            (
                Some("Application/OpenMetrics-Text; version=1.0.0"),
                OpenMetrics,
            ),
            (Some(prometheus), OpenMetrics),
            (
                Some("application/openmetrics-text; q=0.5, */*"),
                OpenMetrics,
            ),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
        assert!(Classic
            .content_type()
            .starts_with("text/plain; version=0.0.4"));
        assert_eq!(OpenMetrics.render(OPEN.to_owned()), OPEN);
    }
}
