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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logger(sink: &Sink) -> Redacting {
        let inner = env_logger::Builder::new()
            .filter_level(LevelFilter::Trace)
            .target(env_logger::Target::Pipe(Box::new(sink.clone())))
            .build();
        Redacting {
            inner,
            secrets: vec!["123:SECRET".into()],
        }
    }

    fn emit(l: &Redacting, target: &str, level: log::Level, msg: &str) {
        l.log(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{msg}"))
                .build(),
        );
    }

    #[test]
    fn the_token_is_redacted_and_http_crates_stay_quiet_below_info() {
        let sink = Sink::default();
        let l = logger(&sink);
        emit(
            &l,
            "gymtriage::bot",
            log::Level::Warn,
            "POST /bot123:SECRET/SendMessage failed",
        );
        emit(
            &l,
            "reqwest::connect",
            log::Level::Trace,
            "body: my bladder answer",
        );
        emit(
            &l,
            "hyper_util::client",
            log::Level::Debug,
            "url /bot123:SECRET/GetMe",
        );
        emit(
            &l,
            "teloxide::update_listeners::webhooks",
            log::Level::Error,
            "Cannot parse an update.\nValue: {\"text\":\"my groin is numb\"}",
        );
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("POST /bot<redacted>/SendMessage failed"),
            "{out}"
        );
        assert!(!out.contains("SECRET"), "{out}");
        assert!(!out.contains("bladder") && !out.contains("numb"), "{out}");
        assert!(out.contains("update body not logged"), "{out}");
    }
}
