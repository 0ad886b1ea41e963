//! Prometheus text exposition (format 0.0.4) of request counts, latency and the DB pool.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    oauth: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    risk: BTreeMap<&'static str, u64>,
    saml: BTreeMap<(&'static str, &'static str), u64>,
    federation: BTreeMap<(&'static str, &'static str), u64>,
}

#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    /// `route` is the matched pattern (`/t/{tenant}/…`), never the raw path, so labels stay bounded.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let h = m.latency.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.total += 1;
    }

    /// An OAuth event: `event` (`token`, `authorize`, `revoke`, `reuse`, `consent`, `logout`,
    /// `introspect`), the grant or endpoint, and the outcome (`ok` or the OAuth error code).
    pub fn oauth(&self, event: &'static str, grant: &'static str, outcome: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.oauth.entry((event, grant, outcome)).or_default() += 1;
    }

    /// An elevated risk decision: `step_up` or `deny`.
    pub fn risk(&self, decision: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.risk.entry(decision).or_default() += 1;
    }

    /// A SAML event: `acs` (outcome `ok` or the refusal reason), `jit` (`created`), `metadata`
    /// (refresh `ok` or `failed`).
    pub fn saml(&self, event: &'static str, outcome: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.saml.entry((event, outcome)).or_default() += 1;
    }

    /// An upstream OpenID Connect event: `callback` (outcome `ok` or the refusal reason), `jit`
    /// (`created`), `discovery` (refresh `ok` or `failed`), `jwks` (`refetched`).
    pub fn federation(&self, event: &'static str, outcome: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.federation.entry((event, outcome)).or_default() += 1;
    }

    /// The scrape text. `breakers` are the dependencies' circuit breakers, by dependency name.
    pub fn render(
        &self,
        pool: latchkey_store::PoolStats,
        (backend, session_store): (&str, &str),
        breakers: &[(&str, latchkey_core::BreakerState)],
    ) -> String {
        let m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        write_build_info(&mut out, backend, session_store);
        m.write_requests(&mut out);
        m.write_oauth(&mut out);
        m.write_risk(&mut out);
        m.write_saml(&mut out);
        m.write_latency(&mut out);
        write_pool_stats(&mut out, &pool);
        write_breakers(&mut out, breakers);
        out
    }
}

/// Whether each dependency is up (its breaker closed) and how often it went down.
fn write_breakers(out: &mut String, breakers: &[(&str, latchkey_core::BreakerState)]) {
    family(
        out,
        "latchkey_dependency_up",
        "gauge",
        "1 while the dependency answers, 0 while its circuit breaker is open.",
    );
    for (name, b) in breakers {
        let _ = writeln!(
            out,
            "latchkey_dependency_up{{dependency=\"{name}\"}} {}",
            u8::from(!b.open)
        );
    }
    family(
        out,
        "latchkey_dependency_outages_total",
        "counter",
        "Times the dependency's circuit breaker opened since the process started.",
    );
    for (name, b) in breakers {
        let _ = writeln!(
            out,
            "latchkey_dependency_outages_total{{dependency=\"{name}\"}} {}",
            b.trips
        );
    }
}

/// The `# HELP` and `# TYPE` lines that open metric family `name`.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
/// A counter family labelled by event and outcome.
fn events(out: &mut String, name: &str, help: &str, counts: &BTreeMap<(&'static str, &'static str), u64>) {
    family(out, name, "counter", help);
    for ((event, outcome), n) in counts {
        let _ = writeln!(out, "{name}{{event=\"{event}\",outcome=\"{outcome}\"}} {n}");
    }
}

fn write_build_info(out: &mut String, backend: &str, session_store: &str) {
    family(
        out,
        "latchkey_build_info",
        "gauge",
        "Latchkey version and configured backends.",
    );
    let _ = writeln!(
        out,
        "latchkey_build_info{{version=\"{}\",database=\"{backend}\",session_store=\"{session_store}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

fn write_pool_stats(out: &mut String, pool: &latchkey_store::PoolStats) {
    family(
        out,
        "latchkey_db_pool_connections",
        "gauge",
        "Database pool connections by state.",
    );
    let _ = writeln!(
        out,
        "latchkey_db_pool_connections{{state=\"idle\"}} {}",
        pool.idle
    );
    let _ = writeln!(
        out,
        "latchkey_db_pool_connections{{state=\"in_use\"}} {}",
        pool.connections.saturating_sub(pool.idle)
    );
    family(
        out,
        "latchkey_db_pool_max_connections",
        "gauge",
        "Configured pool size.",
    );
    let _ = writeln!(out, "latchkey_db_pool_max_connections {}", pool.max_size);
}

/// One metric family per counter map.
impl Inner {
    fn write_requests(&self, out: &mut String) {
        family(
            out,
            "latchkey_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), n) in &self.requests {
            let _ = writeln!(
                out,
                "latchkey_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
    }

    fn write_oauth(&self, out: &mut String) {
        family(
            out,
            "latchkey_oauth_events_total",
            "counter",
            "OAuth events by kind, grant or endpoint, and outcome.",
        );
        for ((event, grant, outcome), n) in &self.oauth {
            let _ = writeln!(
                out,
                "latchkey_oauth_events_total{{event=\"{event}\",grant=\"{grant}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }

    fn write_risk(&self, out: &mut String) {
        family(
            out,
            "latchkey_risk_decisions_total",
            "counter",
            "Sign-ins the risk engine stepped up or denied.",
        );
        for (decision, n) in &self.risk {
            let _ = writeln!(
                out,
                "latchkey_risk_decisions_total{{decision=\"{decision}\"}} {n}"
            );
        }
    }

    fn write_saml(&self, out: &mut String) {
        events(
            out,
            "latchkey_saml_events_total",
            "SAML ACS outcomes, JIT creations and metadata refreshes.",
            &self.saml,
        );
        events(
            out,
            "latchkey_federation_events_total",
            "Upstream OpenID Connect callbacks, JIT creations, discoveries and JWK Set refetches.",
            &self.federation,
        );
    }

    fn write_latency(&self, out: &mut String) {
        family(
            out,
            "latchkey_http_request_duration_seconds",
            "histogram",
            "Request latency by route.",
        );
        for (route, h) in &self.latency {
            let r = escape(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "latchkey_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.total
            );
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/healthz", "GET", 200, 0.002);
        m.observe("/healthz", "GET", 200, 0.2);
        let pool = latchkey_store::PoolStats {
            connections: 3,
            idle: 2,
            max_size: 8,
        };
        let down = latchkey_core::BreakerState { open: true, trips: 2 };
        let text = m.render(pool, ("sqlite", "memory"), &[("database", down)]);
        assert!(text.contains("latchkey_dependency_up{dependency=\"database\"} 0"));
        assert!(text.contains("latchkey_dependency_outages_total{dependency=\"database\"} 2"));
        assert!(
            text.contains("latchkey_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2")
        );
        assert!(
            text.contains(
                "latchkey_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1"
            )
        );
        assert!(
            text.contains("latchkey_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.25\"} 2")
        );
        assert!(text.contains("latchkey_db_pool_connections{state=\"in_use\"} 1"));
    }
}
