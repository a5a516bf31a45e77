//! The `gymtriage` command: `chat`, `check` and `graph` over the dialogue files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use gymtriage::front::{self, ChatEnd};
use gymtriage::graph::{self, Format};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Post-workout pain triage: is it soreness or an injury?"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a check in the terminal (or speak JSON lines with --json).
    Chat {
        /// Language of the conversation.
        #[arg(long, default_value = "en")]
        lang: String,
        /// Speak the JSON-lines protocol on stdin/stdout, for other programs.
        #[arg(long)]
        json: bool,
        /// After a self-care or see-a-professional outcome, run the check-in as if it came
        /// DAYS later ("how is it now?"), to try the follow-up rules without Telegram.
        #[arg(long, value_name = "DAYS")]
        followup: Option<u32>,
        /// Folder of dialogue files.
        #[arg(long, value_name = "DIR")]
        dialogues: Option<PathBuf>,
    },
    /// Validate a folder of dialogue files; errors are printed as file:line:column.
    Check {
        /// Folder of dialogue files (default: ./dialogues, or the one shipped with the source).
        dir: Option<PathBuf>,
    },
    /// Run the Telegram bot (long polling). Needs TELOXIDE_TOKEN; TELOXIDE_API_URL optional.
    Run {
        /// SQLite database for checks in progress (created on first run).
        #[arg(long, default_value = "gymtriage.db", conflicts_with = "storage")]
        db: PathBuf,
        /// Where state lives: `sqlite:PATH` or `redis://HOST:PORT/DB` (several instances).
        #[arg(long)]
        storage: Option<String>,
        /// Webhook mode: the public HTTPS URL Telegram posts updates to (default: long polling).
        #[arg(long, value_name = "URL", requires = "listen")]
        webhook: Option<url::Url>,
        /// Webhook mode: the local address to listen on, e.g. 0.0.0.0:8443.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Webhook secret (`A-Za-z0-9_-`, up to 256); every instance behind one URL needs the
        /// same one. Default: a random secret, fine for a single instance.
        #[arg(long, env = "GYMTRIAGE_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: Option<String>,
        /// Seconds between looks for due check-ins.
        #[arg(long, default_value_t = 30)]
        checkin_poll_secs: u64,
        /// Testing only: a file holding seconds to add to the clock.
        #[arg(long, hide = true)]
        clock_file: Option<PathBuf>,
        /// Hours without activity after which a check is deleted.
        #[arg(long, default_value_t = 24)]
        session_ttl_hours: u64,
        #[arg(long, value_name = "DIR")]
        dialogues: Option<PathBuf>,
    },
    /// Draw the dialogue graph.
    Graph {
        #[arg(long, value_enum, default_value = "mermaid")]
        format: Format,
        /// Only these flows (and the start questions); repeatable. Default: all.
        #[arg(long = "flow")]
        flows: Vec<String>,
        #[arg(long, default_value = "en")]
        lang: String,
        #[arg(long, value_name = "DIR")]
        dialogues: Option<PathBuf>,
    },
}

/// `./dialogues` when run from the project, else the folder this binary was built from.
fn dialogue_dir(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("GYMTRIAGE_DIALOGUES").map(PathBuf::from))
        .unwrap_or_else(|| {
            let local = Path::new("dialogues");
            if local.join("gymtriage.toml").is_file() {
                local.to_path_buf()
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues")
            }
        })
}

fn load(dir: &Path) -> Result<gymtriage::Dialogues, ExitCode> {
    gymtriage::load(dir).map_err(|e| {
        eprintln!("{e}");
        eprintln!(
            "error: {} problem(s) in the dialogue files in {}",
            e.diagnostics.len(),
            dir.display()
        );
        ExitCode::from(1)
    })
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { dir } => {
            let dir = dialogue_dir(dir);
            match load(&dir) {
                Ok(d) => {
                    println!(
                        "ok: {} questions in {} flows, {} languages ({})",
                        d.questions().len(),
                        d.flows().len(),
                        d.languages().len(),
                        dir.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(code) => Ok(code),
            }
        }
        Command::Chat {
            lang,
            json,
            followup,
            dialogues,
        } => {
            let d = match load(&dialogue_dir(dialogues)) {
                Ok(d) => d,
                Err(code) => return Ok(code),
            };
            let Some(lang) = d.lang(&lang) else {
                eprintln!(
                    "error: unknown language `{lang}` (available: {})",
                    d.languages().join(", ")
                );
                return Ok(ExitCode::from(2));
            };
            let mut session = d.start_session(lang);
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal() && !json;
            let end = front::chat(
                &d,
                &mut session,
                json,
                followup,
                stdin.lock(),
                std::io::stdout().lock(),
            )
            .context("terminal input/output failed")?;
            if interactive && end == ChatEnd::EndOfInput {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            db,
            storage,
            webhook,
            listen,
            webhook_secret,
            checkin_poll_secs,
            clock_file,
            session_ttl_hours,
            dialogues,
        } => {
            let d = match load(&dialogue_dir(dialogues)) {
                Ok(d) => d,
                Err(code) => return Ok(code),
            };
            let webhook = match (webhook, listen) {
                (Some(url), Some(listen)) => {
                    let secret = webhook_secret.unwrap_or_else(|| {
                        use rand::distr::{Alphanumeric, SampleString};
                        Alphanumeric.sample_string(&mut rand::rng(), 48)
                    });
                    if !gymtriage::bot::valid_secret(&secret) {
                        eprintln!(
                            "error: the webhook secret must be 1 to 256 characters of A-Z a-z 0-9 _ -"
                        );
                        return Ok(ExitCode::from(2));
                    }
                    Some(gymtriage::bot::Webhook {
                        url,
                        listen,
                        secret,
                    })
                }
                _ => None,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(gymtriage::bot::run(gymtriage::bot::RunOptions {
                webhook,
                checkin_poll: std::time::Duration::from_secs(checkin_poll_secs.max(1)),
                clock_file,
                storage: storage.unwrap_or_else(|| format!("sqlite:{}", db.display())),
                ttl: std::time::Duration::from_secs(session_ttl_hours.saturating_mul(3600)),
                dialogues: d,
            }))
        }
        Command::Graph {
            format,
            flows,
            lang,
            dialogues,
        } => {
            let d = match load(&dialogue_dir(dialogues)) {
                Ok(d) => d,
                Err(code) => return Ok(code),
            };
            let lang = d.lang(&lang).unwrap_or_default();
            for f in &flows {
                if !d.flows().iter().any(|x| &x.id == f) {
                    anyhow::bail!("unknown flow `{f}`");
                }
            }
            print!("{}", graph::render(&d, format, lang, &flows));
            Ok(ExitCode::SUCCESS)
        }
    }
}
