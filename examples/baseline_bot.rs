//! The baseline of the load benchmark (examples/loadbench.rs): a minimal teloxide 0.17 dialogue
//! bot. On any message it sends one question with two inline buttons; every press answers the
//! callback query and edits the message in place, toggling between two texts so that every
//! press produces a real edit. State lives in teloxide's `InMemStorage`, entered with
//! `dialogue::enter` under the message and callback-query filters. Requests go through the same
//! `Throttle` adaptor (default limits) as gymtriage, so the comparison is like for like: sends
//! are paced, edits and callback answers are not.
//!
//! Run by the benchmark as `TELOXIDE_TOKEN=... TELOXIDE_API_URL=http://.../ baseline_bot`.

use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::Limits;
use teloxide::dispatching::dialogue::{self, InMemStorage};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

#[derive(Clone, Default)]
enum State {
    #[default]
    Start,
    Asked {
        yes: bool,
    },
}

type Dialog = Dialogue<State, InMemStorage<State>>;
type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const QUESTION: &str = "Does it hurt when you move?";

fn keyboard() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Yes", "a"),
        InlineKeyboardButton::callback("No", "b"),
    ]])
}

async fn on_message(bot: Throttle<Bot>, dialogue: Dialog, msg: Message) -> HandlerResult {
    bot.send_message(msg.chat.id, QUESTION)
        .reply_markup(keyboard())
        .await?;
    dialogue.update(State::Asked { yes: false }).await?;
    Ok(())
}

async fn on_press(
    bot: Throttle<Bot>,
    dialogue: Dialog,
    state: State,
    q: CallbackQuery,
) -> HandlerResult {
    // A press on a question asked before the bot started counts as the first one.
    let yes = match state {
        State::Asked { yes } => !yes,
        State::Start => true,
    };
    bot.answer_callback_query(q.id.clone()).await?;
    if let Some(m) = &q.message {
        let text = format!(
            "{QUESTION}\nYour answer: {}",
            if yes { "yes" } else { "no" }
        );
        bot.edit_message_text(m.chat().id, m.id(), text)
            .reply_markup(keyboard())
            .await?;
    }
    dialogue.update(State::Asked { yes }).await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let bot = Bot::from_env().throttle(Limits::default());
    let handler = dptree::entry()
        .branch(
            Update::filter_message()
                .chain(dialogue::enter::<Message, InMemStorage<State>, State, _>())
                .endpoint(on_message),
        )
        .branch(
            Update::filter_callback_query()
                .chain(dialogue::enter::<
                    CallbackQuery,
                    InMemStorage<State>,
                    State,
                    _,
                >())
                .endpoint(on_press),
        );
    Dispatcher::builder(bot, handler)
        .dependencies(dptree::deps![InMemStorage::<State>::new()])
        .enable_ctrlc_handler()
        .build()
        .dispatch()
        .await;
}
