//! The dialogue files as written: serde types that mirror the TOML, with spans kept for
//! error messages. Nothing here is resolved or checked beyond what serde can tell.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::urgency::Urgency;

/// A user-facing text: one entry per language.
pub type RawText = Spanned<BTreeMap<String, String>>;
/// Free-text patterns: a list per language.
pub type RawPatterns = Spanned<BTreeMap<String, Vec<String>>>;
/// A list of words per language (yes words, negations...).
pub type RawWords = Spanned<BTreeMap<String, Vec<String>>>;

/// `gymtriage.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub languages: Spanned<Vec<String>>,
    pub start: Spanned<String>,
    pub max_questions: Spanned<usize>,
    pub disclaimer: RawText,
    pub sources: BTreeMap<String, Source>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub title: String,
}

/// `ui.toml`: the front ends' wording.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFile {
    pub levels: Levels<RawText>,
    pub headings: Headings<RawText>,
    pub messages: Messages<RawText>,
    pub words: WordsFile,
    pub bot: BotTexts<RawText>,
}

/// One text per urgency level (the label a front end shows with the headline).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels<T> {
    pub self_care: T,
    pub see_professional: T,
    pub urgent: T,
    pub emergency: T,
}

/// Section headings of an outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headings<T> {
    pub reasons: T,
    pub advice: T,
    pub watch_for: T,
    pub prevention: T,
    pub sources: T,
}

/// Messages the front ends show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages<T> {
    pub welcome: T,
    pub chat_hint: T,
    pub empty: T,
    pub too_long: T,
    pub invalid_utf8: T,
    pub not_understood: T,
    pub unknown_option: T,
    pub nothing_to_undo: T,
    pub finished: T,
    pub restarted: T,
    pub undone: T,
    pub goodbye: T,
    pub question_number: T,
}

/// The Telegram bot's wording.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotTexts<T> {
    pub welcome: T,
    pub help: T,
    pub privacy: T,
    pub forgotten: T,
    pub lang_prompt: T,
    pub lang_set: T,
    pub cancelled: T,
    pub no_check: T,
    pub not_yours: T,
    pub ended: T,
    pub stale: T,
    pub bad_button: T,
    pub unsupported: T,
    pub edited: T,
    pub unknown_command: T,
    pub slow_down: T,
    pub button_back: T,
    pub button_cancel: T,
    pub button_private: T,
    pub private_note: T,
    pub moved_private: T,
    pub continued_here: T,
    pub group_outcome_note: T,
    pub finished: T,
    pub check_for: T,
    pub cmd_start: T,
    pub cmd_check: T,
    pub cmd_back: T,
    pub cmd_cancel: T,
    pub cmd_help: T,
    pub cmd_lang: T,
    pub cmd_privacy: T,
    pub cmd_forget: T,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordsFile {
    pub yes: RawWords,
    pub no: RawWords,
    pub back: RawWords,
    pub restart: RawWords,
    pub quit: RawWords,
    pub negations: RawWords,
    pub clause_breaks: RawWords,
}

/// What part of the body a flow is about; selects the safety rule `check` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Back,
    Bone,
    Joint,
    Muscle,
    None,
}

/// What a question asks about, as far as the safety rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    BladderBowel,
    SaddleNumbness,
    LegWeakness,
    WeightBearing,
    RestNightPain,
    PinpointTenderness,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::BladderBowel,
        Topic::SaddleNumbness,
        Topic::LegWeakness,
        Topic::WeightBearing,
        Topic::RestNightPain,
        Topic::PinpointTenderness,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Topic::BladderBowel => "bladder_bowel",
            Topic::SaddleNumbness => "saddle_numbness",
            Topic::LegWeakness => "leg_weakness",
            Topic::WeightBearing => "weight_bearing",
            Topic::RestNightPain => "rest_night_pain",
            Topic::PinpointTenderness => "pinpoint_tenderness",
        }
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A file in `flows/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    pub flow: Spanned<String>,
    pub body: Body,
    #[serde(default)]
    pub question: Vec<RawQuestion>,
    #[serde(default)]
    pub finding: Vec<RawFinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuestion {
    pub id: Spanned<String>,
    pub text: RawText,
    pub next: Option<Spanned<String>>,
    pub topic: Option<Topic>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub free_text: bool,
    #[serde(default)]
    pub option: Vec<RawOption>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOption {
    pub id: Spanned<String>,
    pub label: RawText,
    pub urgency: Option<Urgency>,
    pub reason: Option<RawText>,
    pub tip: Option<RawText>,
    pub next: Option<Spanned<String>>,
    #[serde(rename = "match")]
    pub patterns: Option<RawPatterns>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFinding {
    pub id: Spanned<String>,
    pub when: Vec<Spanned<String>>,
    pub urgency: Option<Urgency>,
    pub reason: RawText,
    pub advice: Option<RawText>,
}

/// A file in `outcomes/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeFile {
    pub flow: Spanned<String>,
    pub self_care: Option<Spanned<RawOutcome>>,
    pub see_professional: Option<Spanned<RawOutcome>>,
    pub urgent: Option<Spanned<RawOutcome>>,
    pub emergency: Option<Spanned<RawOutcome>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    pub headline: RawText,
    pub advice: Vec<RawText>,
    pub watch_for: Vec<RawText>,
    #[serde(default)]
    pub prevention: Vec<RawText>,
    pub sources: Vec<Spanned<String>>,
}

/// `followup.toml`: the check-ins after an outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpFile {
    pub offer: RawText,
    pub suggested: RawText,
    pub declined: RawText,
    pub scheduled: RawText,
    pub when: When<RawText>,
    pub status: RawText,
    pub gone: RawText,
    pub better: RawText,
    pub same: RawText,
    pub worse: RawText,
    pub gone_reply: RawText,
    pub better_reply: RawText,
    pub same_early_reply: RawText,
    pub again: RawText,
    pub private_button: RawText,
    pub done: RawText,
    pub list_title: RawText,
    pub list_empty: RawText,
    pub cancelled: RawText,
    pub cmd_checkins: RawText,
    pub area: Vec<RawArea>,
}

/// The check-in delays offered after an outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When<T> {
    pub tomorrow: T,
    pub two_days: T,
    pub three_days: T,
    pub week: T,
    pub never: T,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArea {
    pub flow: Spanned<String>,
    pub default_days: Spanned<u32>,
    pub limit_days: Spanned<u32>,
    pub recheck: Vec<Spanned<String>>,
    pub late: RawRule,
    pub worse: RawRule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub urgency: Urgency,
    pub reason: RawText,
}
