//! The Bot API calls made for every button press (answerCallbackQuery, editMessageText,
//! editMessageReplyMarkup), sent through the bot's own HTTP client but without building
//! teloxide payloads or reading the answer into teloxide types.
//!
//! Why: teloxide reads every answer first into a generic tree (its response type is an
//! untagged enum), then into a whole `Message` (text, entities, keyboard) that nobody looks
//! at, and a press's edit carries the question and its keyboard. Under load that was about a
//! tenth of the bot's CPU (BENCHMARKS.md). Here the body is written straight from the
//! outbox's effect and the answer is read for `ok`, the error description and the retry
//! parameters only. Failures come back as teloxide's `RequestError`, so classification and
//! retries (`telegram.rs`) are unchanged. `Throttle` passes these methods through unpaced
//! anyway; `sendMessage`, which it paces, still goes through it.

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::IntoDeserializer;
use serde::ser::SerializeMap;
use teloxide::prelude::*;
use teloxide::types::ResponseParameters;
use teloxide::{ApiError, RequestError};

use super::store::{Button, Keyboard};

/// An inline keyboard as the Bot API reads it, written from the stored form.
struct Markup<'a>(&'a [Vec<Button>]);

impl Serialize for Markup<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Rows<'a>(&'a [Vec<Button>]);
        struct Row<'a>(&'a [Button]);
        struct Key<'a>(&'a Button);
        impl Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|r| Row(r)))
            }
        }
        impl Serialize for Row<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // A button with neither data nor link is not a button: left out.
                s.collect_seq(
                    self.0
                        .iter()
                        .filter(|b| b.data.is_some() || b.url.is_some())
                        .map(Key),
                )
            }
        }
        impl Serialize for Key<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("text", &self.0.text)?;
                match (&self.0.data, &self.0.url) {
                    (Some(data), _) => m.serialize_entry("callback_data", data)?,
                    (None, Some(url)) => m.serialize_entry("url", url)?,
                    (None, None) => {}
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("inline_keyboard", &Rows(self.0))?;
        m.end()
    }
}

#[derive(Serialize)]
struct EditText<'a> {
    chat_id: i64,
    message_id: i32,
    text: &'a str,
    parse_mode: &'static str,
    /// Always present: an empty keyboard removes the buttons.
    reply_markup: Markup<'a>,
}

#[derive(Serialize)]
struct EditMarkup {
    chat_id: i64,
    message_id: i32,
}

#[derive(Serialize)]
struct AnswerQuery<'a> {
    callback_query_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    show_alert: bool,
}

/// A Bot API answer, read only as far as the bot needs (`result` is skipped unread).
#[derive(serde::Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

/// `editMessageText` in HTML with `keyboard` (none: the buttons are removed).
pub async fn edit_text(
    bot: &Bot,
    chat: i64,
    message_id: i32,
    text: &str,
    keyboard: Option<&Keyboard>,
) -> Result<(), RequestError> {
    let body = EditText {
        chat_id: chat,
        message_id,
        text,
        parse_mode: "HTML",
        reply_markup: Markup(keyboard.map_or(&[], |k| k.as_slice())),
    };
    call(bot, "EditMessageText", &body).await
}

/// `editMessageReplyMarkup` without a markup: the message keeps its text, loses its buttons.
pub async fn clear_buttons(bot: &Bot, chat: i64, message_id: i32) -> Result<(), RequestError> {
    let body = EditMarkup {
        chat_id: chat,
        message_id,
    };
    call(bot, "EditMessageReplyMarkup", &body).await
}

/// `answerCallbackQuery`, with a toast or an alert when there is a text.
pub async fn answer_query(
    bot: &Bot,
    id: &str,
    text: Option<&str>,
    alert: bool,
) -> Result<(), RequestError> {
    let body = AnswerQuery {
        callback_query_id: id,
        show_alert: alert && text.is_some(),
        text,
    };
    call(bot, "AnswerCallbackQuery", &body).await
}

async fn call(bot: &Bot, method: &str, body: &impl Serialize) -> Result<(), RequestError> {
    let body = serde_json::to_vec(body).map_err(invalid_json)?;
    let response = bot
        .client()
        .post(method_url(bot, method))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send()
        .await?;
    let bytes = response.bytes().await?;
    read(&bytes)
}

/// The URL teloxide builds for its own calls: `<api>/bot<token>/<Method>`.
fn method_url(bot: &Bot, method: &str) -> reqwest::Url {
    let mut url = bot.api_url();
    if let Ok(mut path) = url.path_segments_mut() {
        path.push(&format!("bot{}", bot.token())).push(method);
    }
    url
}

/// The outcome of a call from its answer's body.
fn read(body: &[u8]) -> Result<(), RequestError> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson {
        source: std::sync::Arc::new(e),
        raw: String::from_utf8_lossy(body).into(),
    })?;
    if reply.ok {
        return Ok(());
    }
    match reply.parameters {
        Some(ResponseParameters::RetryAfter(s)) => return Err(RequestError::RetryAfter(s)),
        Some(ResponseParameters::MigrateToChatId(c)) => {
            return Err(RequestError::MigrateToChatId(c));
        }
        None => {}
    }
    Err(RequestError::Api(api_error(
        &reply.description.unwrap_or_default(),
    )))
}

/// teloxide's own mapping of an error description to an [`ApiError`].
fn api_error(description: &str) -> ApiError {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        description.into_deserializer();
    serde::Deserialize::deserialize(de).unwrap_or_else(|_| ApiError::Unknown(description.into()))
}

fn invalid_json(e: serde_json::Error) -> RequestError {
    RequestError::InvalidJson {
        source: std::sync::Arc::new(e),
        raw: "".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(text: &str, data: Option<&str>, url: Option<&str>) -> Button {
        Button {
            text: text.into(),
            data: data.map(Into::into),
            url: url.map(Into::into),
        }
    }

    #[test]
    fn an_edit_is_written_as_teloxide_writes_it() {
        let keyboard = vec![
            vec![button("Yes", Some("c1"), None)],
            vec![
                button("Private", None, Some("https://t.me/x?start=g1_2")),
                button("nothing", None, None),
            ],
        ];
        let ours = serde_json::to_value(EditText {
            chat_id: -5,
            message_id: 7,
            text: "<b>Q</b>",
            parse_mode: "HTML",
            reply_markup: Markup(&keyboard),
        })
        .unwrap();
        let theirs = serde_json::to_value(
            teloxide::payloads::EditMessageText::new(
                ChatId(-5),
                teloxide::types::MessageId(7),
                "<b>Q</b>",
            )
            .parse_mode(teloxide::types::ParseMode::Html)
            .reply_markup(teloxide::types::InlineKeyboardMarkup::new([
                vec![teloxide::types::InlineKeyboardButton::callback("Yes", "c1")],
                vec![teloxide::types::InlineKeyboardButton::url(
                    "Private",
                    "https://t.me/x?start=g1_2".parse().unwrap(),
                )],
            ])),
        )
        .unwrap();
        assert_eq!(ours, theirs);
        let cleared = serde_json::to_value(EditText {
            chat_id: 1,
            message_id: 2,
            text: "t",
            parse_mode: "HTML",
            reply_markup: Markup(&[]),
        })
        .unwrap();
        assert_eq!(
            cleared["reply_markup"],
            serde_json::json!({"inline_keyboard": []})
        );
    }

    #[test]
    fn calls_go_where_teloxide_sends_them_with_its_field_names() {
        let bot = Bot::new("123:abc");
        assert_eq!(
            method_url(&bot, "EditMessageText").as_str(),
            "https://api.telegram.org/bot123:abc/EditMessageText"
        );
        let local = Bot::new("1:x").set_api_url("http://127.0.0.1:9/".parse().unwrap());
        assert_eq!(
            method_url(&local, "AnswerCallbackQuery").as_str(),
            "http://127.0.0.1:9/bot1:x/AnswerCallbackQuery"
        );
        let toast = |text, alert| {
            serde_json::to_value(AnswerQuery {
                callback_query_id: "q1",
                show_alert: alert,
                text,
            })
            .unwrap()
        };
        assert_eq!(
            toast(None, false),
            serde_json::json!({"callback_query_id": "q1"})
        );
        assert_eq!(
            toast(Some("Stale"), true),
            serde_json::json!({"callback_query_id": "q1", "text": "Stale", "show_alert": true})
        );
        let clear = serde_json::to_value(EditMarkup {
            chat_id: -5,
            message_id: 3,
        })
        .unwrap();
        assert_eq!(clear, serde_json::json!({"chat_id": -5, "message_id": 3}));
    }

    #[test]
    fn answers_are_read_into_teloxide_errors() {
        assert!(read(br#"{"ok":true,"result":{"message_id":5,"text":"x"}}"#).is_ok());
        assert!(read(br#"{"ok":true,"result":true}"#).is_ok());
        assert!(matches!(
            read(br#"{"ok":false,"error_code":400,"description":"Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}"#),
            Err(RequestError::Api(ApiError::MessageNotModified))
        ));
        assert!(matches!(
            read(br#"{"ok":false,"error_code":400,"description":"Bad Request: message to edit not found"}"#),
            Err(RequestError::Api(ApiError::MessageToEditNotFound))
        ));
        match read(br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#) {
            Err(RequestError::RetryAfter(s)) => assert_eq!(s.seconds(), 7),
            other => panic!("{other:?}"),
        }
        match read(br#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#) {
            Err(RequestError::Api(ApiError::Unknown(t))) => assert_eq!(t, "Internal Server Error"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(b"<html>502 Bad Gateway</html>"),
            Err(RequestError::InvalidJson { .. })
        ));
    }
}
