//! `/metrics` read the way Prometheus reads it: parsed by a strict OpenMetrics parser, then
//! looked up by family and label values.

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

use crate::TestServer;

/// One parsed scrape of `/metrics`.
pub struct Scrape {
    text: String,
    parsed: MetricsExposition<OpenMetricsType, OpenMetricsValue>,
}

impl Scrape {
    /// Parses an exposition; panics with the text if it is not valid OpenMetrics.
    pub fn parse(text: String) -> Scrape {
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|e| panic!("/metrics is not valid OpenMetrics: {e:?}\n{text}"));
        Scrape { text, parsed }
    }

    /// The exposition as served.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value of `family`'s sample with these label values (a counter's total, a gauge's
    /// value, a histogram's count), or `None` if it has no such sample.
    pub fn value(&self, family: &str, label_values: &[&str]) -> Option<f64> {
        let values: Vec<String> = label_values.iter().map(|v| v.to_string()).collect();
        let sample = self
            .parsed
            .families
            .get(family)?
            .get_sample_by_label_values(&values)?;
        Some(match &sample.value {
            OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or_default() as f64,
            _ => return None,
        })
    }
}

impl TestServer {
    /// `GET /metrics`, which must answer 200 with valid OpenMetrics.
    pub async fn scrape(&self) -> Scrape {
        let r = self.get("/metrics").await;
        r.assert_status(200, "/metrics");
        Scrape::parse(r.text())
    }
}
