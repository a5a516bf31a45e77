//! Logging through `log` + pretty_env_logger (`RUST_LOG`), made safe for health data: the bot
//! token is redacted from every line, and only gymtriage's and teloxide's own records may go
//! below `info` (HTTP client crates log URLs, which carry the token, and bodies, which carry
//! answers). gymtriage itself never logs message text or answers.

use log::{LevelFilter, Log, Metadata, Record};

struct Redacting {
    inner: env_logger::Logger,
    secrets: Vec<String>,
}

fn ours(target: &str) -> bool {
    target.starts_with("gymtriage") || target.starts_with("teloxide")
}

impl Log for Redacting {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        (m.level() <= log::Level::Info || ours(m.target())) && self.inner.enabled(m)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut text = record.args().to_string();
        // teloxide's webhook listener logs the raw body of an update it cannot parse.
        if let Some(i) = text.find("\nValue: ") {
            text.truncate(i);
            text.push_str(" (update body not logged)");
        }
        for s in &self.secrets {
            if !s.is_empty() && text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "<redacted>");
            }
        }
        self.inner.log(
            &Record::builder()
                .metadata(record.metadata().clone())
                .args(format_args!("{text}"))
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

/// Installs the logger; `secrets` (the bot token) never appear in its output. Defaults to
/// `info` when RUST_LOG is unset.
pub fn init(secrets: Vec<String>) {
    let mut builder = pretty_env_logger::formatted_timed_builder();
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => builder.parse_filters(&spec),
        _ => builder.filter_level(LevelFilter::Info),
    };
    let inner = builder.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Redacting { inner, secrets })).is_ok() {
        log::set_max_level(max);
    }
}
