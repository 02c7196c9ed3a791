//! `lpm serve --sink` flags: the exactly-once MySQL aggregate sink (docs/sink.md).

use clap::Args;
use lpm_service::sink::SinkConfig;

/// Aggregate sink options of `lpm serve`.
#[derive(Args, Clone, Debug)]
pub struct SinkOptions {
    /// Keep one `agg_<view>` table per view in this MySQL/MariaDB database
    /// (`mysql://user:pw@host:port/db`; the database must exist), written exactly once per tick.
    #[arg(long = "sink", env = "LPM_SINK")]
    url: Option<String>,
    /// This sink's row in `agg_sink_state` (where it stores the source position it covers).
    #[arg(long, env = "LPM_SINK_ID", default_value = "lpm")]
    sink_id: String,
    /// Most ticks written by one transaction when several are waiting.
    #[arg(long, env = "LPM_SINK_MAX_GROUP", default_value_t = 64)]
    sink_max_group: usize,
}

impl SinkOptions {
    /// The sink configuration, when `--sink` is given.
    pub fn config(&self) -> Option<SinkConfig> {
        self.url.as_ref().map(|url| SinkConfig {
            sink_id: self.sink_id.clone(),
            max_group: self.sink_max_group.max(1),
            ..SinkConfig::new(url.clone())
        })
    }
}
