//! Request metrics in the Prometheus text format (version 0.0.4).
//!
//! Two families, labelled by method and matched route (the route
//! template, `/v1/api-keys/{id}`, never the raw path, so an id in a URL
//! cannot blow up the label count):
//!
//! - `bounty_http_requests_total{method,route,status}`: a counter;
//! - `bounty_http_request_duration_seconds{method,route}`: a histogram.
//!
//! Requests that match no route are counted under `route="unmatched"`.
//!
//! Helpdesk webhook deliveries are counted by vendor and result in
//! `bounty_helpdesk_deliveries_total{kind,result}` (`accepted`,
//! `duplicate`, `ignored`, `rejected` for a bad signature, `invalid` for
//! a verified body that does not parse).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

/// Request counters and latency histograms per route.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes.entry((method.to_owned(), route.to_owned())).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.buckets[slot] += 1;
        stats.sum_seconds += seconds;
        stats.count += 1;
    }

    /// Counts one helpdesk webhook delivery.
    pub fn count_delivery(&self, kind: &'static str, result: &'static str) {
        let mut deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        *deliveries.entry((kind, result)).or_default() += 1;
    }

    /// Everything recorded so far, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
            out.push_str("# HELP bounty_helpdesk_deliveries_total Helpdesk webhook deliveries, by vendor and result.\n");
            out.push_str("# TYPE bounty_helpdesk_deliveries_total counter\n");
            for ((kind, result), n) in deliveries.iter() {
                let _ = writeln!(
                    out,
                    "bounty_helpdesk_deliveries_total{{kind=\"{kind}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP bounty_http_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE bounty_http_requests_total counter\n");
        for ((method, route), stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "bounty_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str("# HELP bounty_http_request_duration_seconds Time to answer an HTTP request.\n");
        out.push_str("# TYPE bounty_http_request_duration_seconds histogram\n");
        for ((method, route), stats) in routes.iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (i, n) in stats.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "bounty_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "bounty_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "bounty_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        out
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/v1/account", 200, Duration::from_micros(300));
        m.observe("GET", "/v1/account", 200, Duration::from_millis(3));
        m.observe("GET", "/v1/account", 401, Duration::from_secs(60));
        let text = m.render();
        assert!(
            text.contains(
                "bounty_http_requests_total{method=\"GET\",route=\"/v1/account\",status=\"200\"} 2"
            )
        );
        assert!(
            text.contains(
                "bounty_http_requests_total{method=\"GET\",route=\"/v1/account\",status=\"401\"} 1"
            )
        );
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.005\"} 2"));
        assert!(text.contains("le=\"10\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 3"));
        assert!(
            text.contains(
                "bounty_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/account\"} 3"
            )
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
