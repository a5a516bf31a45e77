//! The Telegram handlers driven through teloxide_tests' fake Bot API: real updates go through
//! `gymtriage::bot::schema()`, replies come back as Bot API requests, and buttons are pressed by
//! reading the keyboards the bot sent and sending back their callback data, as a client would.

mod bot_support;

use bot_support::*;
use gymtriage::bot::callback::{self, Action};
use gymtriage::bot::render;
use teloxide_tests::{MockEditedMessage, MockMessageSticker, MockMessageText};

const LOWER_BACK: &str = "Lower back or the base of the spine";
const BONE: &str = "A bone: shin, foot or another bone";
const ELSEWHERE: &str = "Somewhere else: a muscle in the legs, arms, chest, glutes or abs";
const BACK: &str = "⬅️ Back";
const CANCEL: &str = "✖️ Cancel";
const PRIVATE_LINK: &str = "🔒 Answer in a private chat";
const BLADDER_Q: &str = "trouble controlling your bladder or bowels";
const SADDLE_Q: &str = "numbness, tingling or reduced feeling in the groin";
const BLADDER_REASON: &str = "You noticed a change in bladder or bowel control";

fn en(text: &gymtriage::dialogue::model::Text) -> String {
    text.get(lang("en")).to_string()
}

fn es(text: &gymtriage::dialogue::model::Text) -> String {
    text.get(lang("es")).to_string()
}

/// The back soreness path: every answer after the area, with a piece of the question it leads to.
const BACK_SORENESS: &[(&str, &str)] = &[
    ("No", "numbness, tingling or reduced feeling"), // bladder
    ("No", "Does either leg or foot feel weak"),     // saddle
    ("No", "Does the pain travel down a leg"),       // weakness
    ("None of these", "When did the pain start?"),   // nerve
    (
        "Hours later: 12 to 72 hours after training",
        "What does the pain feel like?",
    ),
    (
        "A dull, stiff or cramping ache",
        "Could you point to the pain",
    ),
    ("Spread over an area of muscle", "How does gentle movement"),
    ("It eases as I get moving", "How long has it been hurting?"),
    ("Less than 3 days", "Did any of these come before the pain?"),
];

#[tokio::test]
async fn a_private_check_by_buttons_edits_one_message_and_ends_in_self_care() {
    let mut h = Harness::new();
    let alice = user(1001, "Alice", "en");
    let chat = private(&alice);
    let me = chat.id.0;

    let r = h.text(&alice, &chat, "/check").await;
    let mut q = one_sent(&r, me);
    assert!(q.text.contains("Question 1"), "{}", q.text);
    assert!(q.text.contains("Where does it hurt?"), "{}", q.text);
    assert!(
        !q.text.contains("Check for"),
        "private questions need no name"
    );
    let labels = q.labels();
    assert_eq!(labels.len(), 7, "six areas and cancel: {labels:?}");
    assert!(labels.contains(&LOWER_BACK.to_string()));
    assert!(
        !labels.contains(&BACK.to_string()),
        "nothing to undo on question 1"
    );
    assert_eq!(labels.last().unwrap(), CANCEL);
    let question_message = q.id();
    let stored = h.load(me, &alice).await.expect("the check is stored");
    let check = stored.check.as_ref().unwrap();
    assert_eq!(check.message_id, Some(question_message));
    assert_eq!(check.version, 0);
    assert!(answers(&stored).is_empty());
    assert_eq!(stored.updated_at, T0);

    // The area: the same message now shows question 2, with a way back.
    let r = h.press_label(&alice, &q, LOWER_BACK).await;
    assert!(r.sent_messages.is_empty(), "answers by button are edits");
    assert_eq!(answer(&r), (None, false), "a plain acknowledgement");
    q = one_edit(&r, me);
    assert_eq!(q.id(), question_message);
    assert!(q.text.contains("Question 2"), "{}", q.text);
    assert!(q.text.contains(BLADDER_Q), "{}", q.text);
    assert_eq!(q.labels(), ["Yes", "No", BACK, CANCEL]);
    assert!(
        q.url_buttons().is_empty(),
        "no private-chat link in a private chat"
    );

    for (n, (label, next)) in BACK_SORENESS.iter().enumerate() {
        let r = h.press_label(&alice, &q, label).await;
        assert!(r.sent_messages.is_empty(), "step {n}: nothing re-sent");
        assert_eq!(answer(&r), (None, false));
        q = one_edit(&r, me);
        assert_eq!(q.id(), question_message, "step {n}: edited in place");
        assert!(
            q.text.contains(&format!("Question {}", n + 3)),
            "{}",
            q.text
        );
        assert!(q.text.contains(next), "step {n}: {}", q.text);
        let stored = h.load(me, &alice).await.unwrap();
        assert_eq!(answers(&stored).len(), n + 2);
        assert_eq!(stored.check.as_ref().unwrap().version, n as u32 + 2);
        assert_eq!(
            stored.check.as_ref().unwrap().message_id,
            Some(question_message)
        );
    }
    let last_question = q.clone();

    let r = h.press_label(&alice, &q, "None of these").await;
    assert_eq!(answer(&r), (None, false));
    let done = one_edit(&r, me);
    assert_eq!(done.id(), question_message);
    assert!(done.text.starts_with("✅ "), "{}", done.text);
    assert!(done.text.contains(&en(&ui().bot.finished)));
    assert!(!done.has_buttons(), "a finished check has no buttons left");
    let mut outcome = sent_in(&r, me);
    // The outcome, then an offer to check in later (self-care: "see how it goes").
    let offer = outcome.pop().expect("the check-in offer");
    assert!(
        offer.text.contains("check in on you later"),
        "{}",
        offer.text
    );
    assert!(!outcome.is_empty());
    assert!(outcome.iter().all(|m| !m.has_buttons()));
    let all: String = outcome.iter().map(|m| m.text.as_str()).collect();
    assert!(all.starts_with("🟢 <b>Self-care</b>"), "{all}");
    assert!(all.contains("<b>What to do now</b>"), "{all}");
    assert!(all.contains("delayed-onset muscle soreness"), "{all}");
    assert!(all.contains("is not a diagnosis"), "{all}");
    assert!(
        h.load(me, &alice).await.is_none(),
        "the stored check is gone once it ends"
    );
    assert!(h.app.store.pending().await.unwrap().is_empty());

    // The finished check's buttons now only say so.
    let r = h.press_label(&alice, &last_question, "None of these").await;
    assert_alert(&r, &en(&ui().bot.ended));
    assert!(en(&ui().bot.ended).contains("has ended"));
    assert_silent(&r);
}

#[tokio::test]
async fn a_private_check_by_free_text_asks_below_each_answer_and_ends_in_an_outcome() {
    let mut h = Harness::new();
    let bob = user(1002, "Bob", "en");
    let chat = private(&bob);
    let me = chat.id.0;

    // No command needed: a description starts a check and answers the first question.
    let r = h.text(&bob, &chat, "my shins hurt after running").await;
    let mut q = one_sent(&r, me);
    assert!(r.edited_messages_reply_markup.is_empty());
    assert!(q.text.contains("Question 2"), "{}", q.text);
    assert!(q.text.contains("Can you put your full weight on it"));
    assert_eq!(answers(&h.load(me, &bob).await.unwrap()), ["area=bone"]);

    let steps = [
        (
            "yes",
            "Does it keep hurting once you stop exercising",
            "bone_weight=yes",
        ),
        ("no", "Is there one small spot", "bone_rest=no"),
        ("no", "Is there swelling or bruising", "bone_spot=no"),
        ("no", "How is it going?", "bone_swelling=no"),
    ];
    for (typed, next, recorded) in steps {
        let previous = q.id();
        let r = h.text(&bob, &chat, typed).await;
        // The old question loses its buttons and the next one arrives below it.
        assert_eq!(r.edited_messages_reply_markup.len(), 1);
        let cleared = &r.edited_messages_reply_markup[0];
        assert_eq!(cleared.message.id.0, previous);
        assert!(cleared.message.reply_markup().is_none());
        assert!(
            r.edited_messages_text.is_empty(),
            "the old text stays as a record"
        );
        q = one_sent(&r, me);
        assert_ne!(q.id(), previous);
        assert!(q.text.contains(next), "after {typed:?}: {}", q.text);
        assert!(q.has_buttons());
        let stored = h.load(me, &bob).await.unwrap();
        assert_eq!(answers(&stored).last().unwrap(), recorded);
        assert_eq!(stored.check.unwrap().message_id, Some(q.id()));
    }

    // Words that match no option: the question again, with a note, and nothing recorded.
    let before = h.load(me, &bob).await.unwrap();
    let r = h.text(&bob, &chat, "it is new").await;
    q = one_sent(&r, me);
    assert!(
        q.text
            .starts_with(&format!("<i>{}</i>", en(&ui().messages.not_understood))),
        "{}",
        q.text
    );
    assert!(q.text.contains("How is it going?"));
    assert_eq!(answers(&h.load(me, &bob).await.unwrap()), answers(&before));

    let r = h.text(&bob, &chat, "1").await;
    q = one_sent(&r, me);
    assert!(q.text.contains("Did any of these apply before the pain?"));

    let r = h.text(&bob, &chat, "none of these").await;
    let done = one_edit(&r, me);
    assert_eq!(
        done.id(),
        q.id(),
        "the last question says the check is over"
    );
    assert!(!done.has_buttons());
    let all: String = sent_in(&r, me).iter().map(|m| m.text.as_str()).collect();
    assert!(all.starts_with("🟢 <b>Self-care</b>"), "{all}");
    assert!(all.contains("bone pain after a workout"), "{all}");
    assert!(h.load(me, &bob).await.is_none());
}

#[tokio::test]
async fn typed_words_are_never_stored() {
    let mut h = Harness::new();
    let bob = user(1003, "Bob", "en");
    let chat = private(&bob);
    h.text(&bob, &chat, "my shins hurt after running on concrete")
        .await;
    let stored = h.load(chat.id.0, &bob).await.unwrap();
    let json = serde_json::to_string(&stored).unwrap();
    for word in ["shins", "running", "concrete"] {
        assert!(!json.contains(word), "{word} stored: {json}");
    }
    assert_eq!(answers(&stored), ["area=bone"]);
}

/// Alice's and Bob's paths, both ending in self-care.
const ALICE_BONE: &[&str] = &[
    BONE,
    "Yes",
    "No, only during or right after activity",
    "No tender spot",
    "No",
    "It's new (a day or two) or already easing",
    "None of these",
];
const BOB_MUSCLE: &[&str] = &[
    ELSEWHERE,
    "The muscle: an ache or stiffness in its bulk",
    "Hours later: 12 to 72 hours after training",
    "A dull, stiff or cramping ache",
    "Spread over the muscle",
    "It eases as I get moving",
    "No",
    "Less than 3 days",
    "None of these",
];

#[tokio::test]
async fn two_group_members_run_interleaved_checks_on_their_own_messages() {
    let mut h = Harness::new();
    let alice = user(2001, "Alice", "en");
    let bob = user(2002, "Bob", "en");
    let g = group();

    let r = h.text(&alice, &g, "/check").await;
    let mut qa = one_sent(&r, GROUP);
    assert!(
        qa.text
            .starts_with("🩺 <b>Check for Alice</b> · Question 1"),
        "{}",
        qa.text
    );
    let r = h.text(&bob, &g, "/check@gymtriage_bot").await;
    let mut qb = one_sent(&r, GROUP);
    assert!(
        qb.text.starts_with("🩺 <b>Check for Bob</b> · Question 1"),
        "{}",
        qb.text
    );
    assert_ne!(
        qa.id(),
        qb.id(),
        "each member gets their own question message"
    );
    let (a_msg, b_msg) = (qa.id(), qb.id());
    assert_ne!(
        qa.data(BONE),
        qb.data(BONE),
        "the buttons carry their owner and check"
    );

    // Chatter in the group that is not for the bot is ignored; so is another bot's command.
    let r = h.text(&bob, &g, "anyone up for squats later?").await;
    assert_silent(&r);
    let r = h.text(&bob, &g, "/check@other_bot").await;
    assert_silent(&r);
    assert!(answers(&h.load(GROUP, &bob).await.unwrap()).is_empty());

    let (mut ia, mut ib) = (0, 0);
    let mut outcomes = Vec::new();
    while ia < ALICE_BONE.len() || ib < BOB_MUSCLE.len() {
        for (who, path, i, q, msg) in [
            (&alice, ALICE_BONE, &mut ia, &mut qa, a_msg),
            (&bob, BOB_MUSCLE, &mut ib, &mut qb, b_msg),
        ] {
            let Some(label) = path.get(*i) else { continue };
            let other = if who.id == alice.id { &bob } else { &alice };
            let other_before = h.state(GROUP, other).await;
            let r = h.press_label(who, q, label).await;
            *i += 1;
            assert_eq!(answer(&r), (None, false));
            let edit = one_edit(&r, GROUP);
            assert_eq!(
                edit.id(),
                msg,
                "{} pressed on their own message",
                who.first_name
            );
            assert_eq!(
                h.state(GROUP, other).await,
                other_before,
                "{}'s press left the other check alone",
                who.first_name
            );
            if *i < path.len() {
                assert!(r.sent_messages.is_empty());
                assert!(
                    edit.text.starts_with(&format!(
                        "🩺 <b>Check for {}</b> · Question {}",
                        who.first_name,
                        *i + 1
                    )),
                    "{}",
                    edit.text
                );
                assert_eq!(
                    answers(&h.load(GROUP, who).await.unwrap()).len(),
                    *i,
                    "{}'s answers",
                    who.first_name
                );
                *q = edit;
            } else {
                assert!(edit.text.starts_with("✅ "));
                assert!(!edit.has_buttons());
                assert!(h.load(GROUP, who).await.is_none());
                outcomes.push((who.first_name.clone(), sent_in(&r, GROUP)));
            }
        }
    }
    assert_eq!(outcomes.len(), 2);
    for (name, messages) in &outcomes {
        let all: String = messages.iter().map(|m| m.text.as_str()).collect();
        // Both outcomes land in the same chat: each must say whose it is.
        assert!(
            all.starts_with(&format!("🩺 <b>Check for {name}</b>\n🟢 <b>Self-care</b>")),
            "{name}: {all}"
        );
        assert_eq!(all.matches("Check for").count(), 1, "{all}");
    }
    assert!(h.app.store.pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn pressing_someone_elses_button_alerts_and_changes_nothing() {
    let mut h = Harness::new();
    let alice = user(3001, "Alice", "en");
    let carol = user(3003, "Carol", "en");
    let g = group();

    let r = h.text(&alice, &g, "/check").await;
    let q = one_sent(&r, GROUP);
    let r = h.press_label(&alice, &q, LOWER_BACK).await;
    let q = one_edit(&r, GROUP);
    let before = h.state(GROUP, &alice).await;

    for label in ["Yes", "No", BACK, CANCEL] {
        let r = h.press_label(&carol, &q, label).await;
        assert_alert(&r, &en(&ui().bot.not_yours));
        assert!(en(&ui().bot.not_yours).contains("belongs to someone else"));
        assert_silent(&r);
        assert_eq!(h.state(GROUP, &alice).await, before, "after {label}");
        assert!(h.load(GROUP, &carol).await.is_none());
    }
    // Alice's own press still works afterwards.
    let r = h.press_label(&alice, &q, "No").await;
    assert!(one_edit(&r, GROUP).text.contains(SADDLE_Q));
}

#[tokio::test]
async fn a_stale_button_shows_the_current_question_and_an_ended_check_says_so() {
    let mut h = Harness::new();
    let dana = user(4001, "Dana", "en");
    let chat = private(&dana);
    let me = chat.id.0;

    let r = h.text(&dana, &chat, "/check").await;
    let area = one_sent(&r, me);
    let r = h.press_label(&dana, &area, LOWER_BACK).await;
    let bladder = one_edit(&r, me);

    // A second press on the first version (a double tap, or a slow client).
    let r = h.press_label(&dana, &area, "Upper or middle back").await;
    assert_eq!(answer(&r), (Some(en(&ui().bot.stale)), false), "a toast");
    // The message already shows the current question: the edit is a no-op, which Telegram
    // (and the fake server) refuse as "message is not modified".
    assert_silent(&r);
    let stored = h.load(me, &dana).await.unwrap();
    assert_eq!(answers(&stored), ["area=lower_back"]);
    assert_eq!(stored.check.as_ref().unwrap().version, 1);

    // Answer by typing: the question moves to a new message below.
    let r = h.text(&dana, &chat, "no").await;
    let saddle = one_sent(&r, me);
    assert!(saddle.text.contains(SADDLE_Q));
    // Now press an emergency answer on the old bladder message: it is stale, so it must not
    // count; the old message shows the current question instead.
    let r = h.press_label(&dana, &bladder, "Yes").await;
    assert_eq!(answer(&r), (Some(en(&ui().bot.stale)), false));
    let shown = one_edit(&r, me);
    assert_eq!(shown.id(), bladder.id());
    assert!(shown.text.contains(SADDLE_Q), "{}", shown.text);
    assert_eq!(
        shown.data("No"),
        saddle.data("No"),
        "current-version buttons"
    );
    assert!(r.sent_messages.is_empty());
    // Only one message per check keeps live buttons: the one that showed the question until
    // now loses them, and the pressed one is the question message from now on.
    let cleared: Vec<i32> = r
        .edited_messages_reply_markup
        .iter()
        .map(|e| e.message.id.0)
        .collect();
    assert_eq!(cleared, [saddle.id()]);
    assert_eq!(
        h.load(me, &dana).await.unwrap().check.unwrap().message_id,
        Some(bladder.id())
    );
    let stored = h.load(me, &dana).await.unwrap();
    assert_eq!(answers(&stored), ["area=lower_back", "back_bladder=no"]);

    // Cancel by button: the message says so and loses its buttons; the check is gone.
    let r = h.press_label(&dana, &shown, CANCEL).await;
    assert_eq!(answer(&r), (None, false));
    let cancelled = one_edit(&r, me);
    assert_eq!(cancelled.text, en(&ui().bot.cancelled));
    assert!(!cancelled.has_buttons());
    assert!(h.load(me, &dana).await.is_none());

    // Any button of the cancelled check now says it has ended.
    for (shown, label) in [(&saddle, "No"), (&bladder, "Yes"), (&area, LOWER_BACK)] {
        let r = h.press_label(&dana, shown, label).await;
        assert_alert(&r, &en(&ui().bot.ended));
        assert_silent(&r);
    }
    assert!(h.load(me, &dana).await.is_none());

    // A new check: the old check's buttons do not drive it.
    let r = h.text(&dana, &chat, "/check").await;
    one_sent(&r, me);
    let r = h.press_label(&dana, &area, LOWER_BACK).await;
    assert_alert(&r, &en(&ui().bot.ended));
    assert!(answers(&h.load(me, &dana).await.unwrap()).is_empty());
}

#[tokio::test]
async fn cancel_back_and_forget_commands() {
    let mut h = Harness::new();
    let erin = user(5001, "Erin", "en");
    let frank = user(5002, "Frank", "en");
    let chat = private(&erin);
    let me = chat.id.0;
    let g = group();
    let no_check = en(&ui().bot.no_check);

    // Without a check.
    for cmd in ["/back", "/cancel"] {
        let r = h.text(&erin, &chat, cmd).await;
        assert_eq!(one_sent(&r, me).text, no_check, "{cmd}");
        assert!(h.load(me, &erin).await.is_none());
    }

    let r = h.text(&erin, &chat, "/check").await;
    let q = one_sent(&r, me);
    let r = h.press_label(&erin, &q, LOWER_BACK).await;
    let q = one_edit(&r, me);
    let r = h.press_label(&erin, &q, "No").await;
    let q = one_edit(&r, me);
    assert!(q.text.contains(SADDLE_Q));
    assert_eq!(
        answers(&h.load(me, &erin).await.unwrap()),
        ["area=lower_back", "back_bladder=no"]
    );

    // The Back button undoes in place.
    let r = h.press_label(&erin, &q, BACK).await;
    assert_eq!(answer(&r), (None, false));
    let q = one_edit(&r, me);
    assert!(q.text.contains("Question 2") && q.text.contains(BLADDER_Q));
    assert_eq!(
        answers(&h.load(me, &erin).await.unwrap()),
        ["area=lower_back"]
    );
    let r = h.press_label(&erin, &q, "No").await;
    let q = one_edit(&r, me);

    // /back: the old message loses its buttons, the previous question comes below.
    let r = h.text(&erin, &chat, "/back").await;
    assert_eq!(r.edited_messages_reply_markup.len(), 1);
    assert_eq!(r.edited_messages_reply_markup[0].message.id.0, q.id());
    let q = one_sent(&r, me);
    assert!(q.text.contains("Question 2") && q.text.contains(BLADDER_Q));
    assert_eq!(
        answers(&h.load(me, &erin).await.unwrap()),
        ["area=lower_back"]
    );
    let r = h.text(&erin, &chat, "/back").await;
    let q = one_sent(&r, me);
    assert!(q.text.contains("Question 1"));
    assert!(answers(&h.load(me, &erin).await.unwrap()).is_empty());
    // Nothing left to undo: said, and the question is still there.
    let r = h.text(&erin, &chat, "/back").await;
    let q = one_sent(&r, me);
    assert!(
        q.text
            .starts_with(&format!("<i>{}</i>", en(&ui().messages.nothing_to_undo))),
        "{}",
        q.text
    );
    assert!(q.text.contains("Question 1"));
    assert!(h.load(me, &erin).await.unwrap().check.is_some());
    // The Back button on question 1 does not exist, and a forged one is only a toast.
    assert!(!q.labels().contains(&BACK.to_string()));
    let check = h.load(me, &erin).await.unwrap().check.unwrap();
    let forged = callback::check_button(erin.id.0 as i64, check.id, check.version, Action::Back);
    let r = h.press(&erin, &q.message, &forged).await;
    assert_eq!(
        answer(&r),
        (Some(en(&ui().messages.nothing_to_undo)), false)
    );
    assert_silent(&r);

    // /cancel: the question message loses its buttons and a confirmation comes below.
    let r = h.text(&erin, &chat, "/cancel").await;
    assert!(
        r.edited_messages_text.is_empty(),
        "no duplicate of the confirmation"
    );
    assert_eq!(r.edited_messages_reply_markup.len(), 1);
    assert_eq!(
        r.edited_messages_reply_markup[0].message.id.0,
        q.id(),
        "the old question's buttons are removed"
    );
    assert_eq!(one_sent(&r, me).text, en(&ui().bot.cancelled));
    assert!(h.load(me, &erin).await.is_none());

    // /forget: checks in every chat and the chosen language go; other people's stay.
    let r = h.text(&erin, &chat, "/check").await;
    one_sent(&r, me);
    let r = h.text(&erin, &g, "/check").await;
    one_sent(&r, GROUP);
    let r = h.text(&frank, &g, "/check").await;
    one_sent(&r, GROUP);
    let r = h.text(&erin, &chat, "/lang es").await;
    assert_eq!(one_sent(&r, me).text, es(&ui().bot.lang_set));
    assert_eq!(h.user_lang(&erin).await.as_deref(), Some("es"));
    assert!(h.load(me, &erin).await.is_some() && h.load(GROUP, &erin).await.is_some());

    let r = h.text(&erin, &chat, "/forget").await;
    // Said in the language Erin had chosen, the last thing known about her.
    assert_eq!(one_sent(&r, me).text, es(&ui().bot.forgotten));
    assert!(h.load(me, &erin).await.is_none());
    assert!(h.load(GROUP, &erin).await.is_none());
    assert_eq!(h.user_lang(&erin).await, None);
    assert!(
        h.load(GROUP, &frank).await.is_some(),
        "Frank's check is his own"
    );
    assert_eq!(h.app.store.count_members().await.unwrap(), 1);
    // Back to her Telegram language.
    let r = h.text(&erin, &chat, "/help").await;
    assert_eq!(one_sent(&r, me).text, render::plain(&en(&ui().bot.help)));
    assert!(h.load(me, &erin).await.is_none(), "/help stores nothing");
}

#[tokio::test]
async fn a_sticker_mid_check_gets_a_hint_and_leaves_the_check_alone() {
    let mut h = Harness::new();
    let gina = user(6001, "Gina", "en");
    let chat = private(&gina);
    let me = chat.id.0;

    let r = h.text(&gina, &chat, "/check").await;
    let q = one_sent(&r, me);
    let r = h.press_label(&gina, &q, LOWER_BACK).await;
    let q = one_edit(&r, me);
    let before = h.state(me, &gina).await;

    let r = h
        .dispatch(
            MockMessageSticker::new()
                .from(gina.clone())
                .chat(chat.clone()),
        )
        .await;
    let hint = one_sent(&r, me);
    assert_eq!(hint.text, en(&ui().bot.unsupported));
    assert!(hint.text.contains("only read text"));
    assert!(!hint.has_buttons());
    assert!(r.edited_messages_text.is_empty() && r.edited_messages_reply_markup.is_empty());
    assert_eq!(h.state(me, &gina).await, before);

    // The question's buttons still work.
    let r = h.press_label(&gina, &q, "No").await;
    assert_eq!(one_edit(&r, me).id(), q.id());
    assert_eq!(
        answers(&h.load(me, &gina).await.unwrap()),
        ["area=lower_back", "back_bladder=no"]
    );

    // In a group, a sticker that is not a reply to the bot is none of its business.
    let g = group();
    let r = h.text(&gina, &g, "/check").await;
    let gq = one_sent(&r, GROUP);
    let before = h.state(GROUP, &gina).await;
    let r = h
        .dispatch(MockMessageSticker::new().from(gina.clone()).chat(g.clone()))
        .await;
    assert_silent(&r);
    // A sticker in reply to the bot's question gets the hint.
    let r = h
        .dispatch(
            MockMessageSticker::new()
                .from(gina.clone())
                .chat(g.clone())
                .reply_to_message(gq.message.clone()),
        )
        .await;
    assert_eq!(one_sent(&r, GROUP).text, en(&ui().bot.unsupported));
    assert_eq!(h.state(GROUP, &gina).await, before);
}

#[tokio::test]
async fn spanish_speakers_get_spanish_and_lang_switches_the_language() {
    let mut h = Harness::new();
    let lucia = user(7001, "Lucía", "es");
    let chat = private(&lucia);
    let me = chat.id.0;

    let r = h.text(&lucia, &chat, "/check").await;
    let q = one_sent(&r, me);
    assert!(q.text.contains("Pregunta 1"), "{}", q.text);
    assert!(q.text.contains("¿Dónde te duele?"), "{}", q.text);
    assert!(
        q.labels()
            .contains(&"Zona lumbar o la base de la columna".to_string())
    );
    assert_eq!(q.labels().last().unwrap(), "✖️ Cancelar");

    let r = h
        .press_label(&lucia, &q, "Zona lumbar o la base de la columna")
        .await;
    let q = one_edit(&r, me);
    assert!(q.text.contains("Pregunta 2"));
    assert!(q.text.contains("controlar la vejiga o el intestino"));
    assert_eq!(q.labels(), ["Sí", "No", "⬅️ Atrás", "✖️ Cancelar"]);

    let r = h.press_label(&lucia, &q, "Sí").await;
    let done = one_edit(&r, me);
    assert!(done.text.contains(&es(&ui().bot.finished)));
    let all: String = sent_in(&r, me).iter().map(|m| m.text.as_str()).collect();
    assert!(all.starts_with("🚨 <b>URGENCIA MÉDICA</b>"), "{all}");
    assert!(all.contains("<b>Por qué</b>"));
    assert!(
        all.contains("Notaste un cambio en el control de la vejiga"),
        "a private outcome gives every reason: {all}"
    );
    assert!(all.contains("no es un diagnóstico"));
    assert!(h.load(me, &lucia).await.is_none());

    // Typed Spanish works too.
    let r = h.text(&lucia, &chat, "me duele la espinilla").await;
    let q = one_sent(&r, me);
    assert!(q.text.contains("¿Puedes apoyar todo el peso"), "{}", q.text);
    let r = h.text(&lucia, &chat, "sí").await;
    assert!(one_sent(&r, me).text.contains("¿Sigue doliendo"));
    let r = h.text(&lucia, &chat, "/cancel").await;
    assert_eq!(one_sent(&r, me).text, es(&ui().bot.cancelled));

    // /lang without a code offers the languages as buttons.
    let r = h.text(&lucia, &chat, "/lang").await;
    let prompt = one_sent(&r, me);
    assert_eq!(prompt.text, es(&ui().bot.lang_prompt));
    assert_eq!(prompt.labels(), ["English", "Español"]);
    let r = h.press_label(&lucia, &prompt, "English").await;
    assert_eq!(answer(&r), (None, false));
    let set = one_edit(&r, me);
    assert_eq!(set.id(), prompt.id());
    assert_eq!(set.text, en(&ui().bot.lang_set));
    assert!(!set.has_buttons());
    assert_eq!(h.user_lang(&lucia).await.as_deref(), Some("en"));

    let r = h.text(&lucia, &chat, "/check").await;
    let q = one_sent(&r, me);
    assert!(q.text.contains("Question 1") && q.text.contains("Where does it hurt?"));

    // Switching mid-check: the next question comes in the new language.
    let r = h.text(&lucia, &chat, "/lang ES").await;
    assert_eq!(one_sent(&r, me).text, es(&ui().bot.lang_set));
    assert_eq!(h.user_lang(&lucia).await.as_deref(), Some("es"));
    let r = h.press_label(&lucia, &q, BONE).await;
    let next = one_edit(&r, me);
    assert!(next.text.contains("Pregunta 2"), "{}", next.text);
    assert!(next.text.contains("¿Puedes apoyar todo el peso"));
    assert_eq!(answers(&h.load(me, &lucia).await.unwrap()), ["area=bone"]);

    // An unknown code shows the choice again; a forged language button is refused.
    let r = h.text(&lucia, &chat, "/lang fr").await;
    let prompt = one_sent(&r, me);
    assert_eq!(prompt.labels(), ["English", "Español"]);
    let r = h.press(&lucia, &prompt.message, "L.fr").await;
    assert_alert(&r, &es(&ui().bot.bad_button));
    assert_silent(&r);
    assert_eq!(h.user_lang(&lucia).await.as_deref(), Some("es"));
}

#[tokio::test]
async fn in_a_group_sensitive_questions_offer_a_private_chat_and_outcomes_stay_discreet() {
    let mut h = Harness::new();
    let alice = user(8001, "Alice", "en");
    let bob = user(8002, "Bob", "en");
    let g = group();

    // Alice answers the bladder question in the group.
    let r = h.text(&alice, &g, "/check").await;
    let q = one_sent(&r, GROUP);
    assert!(q.url_buttons().is_empty(), "question 1 is not sensitive");
    let r = h.press_label(&alice, &q, LOWER_BACK).await;
    let q = one_edit(&r, GROUP);
    assert!(q.text.contains(BLADDER_Q));
    assert!(q.text.contains(&en(&ui().bot.private_note)), "{}", q.text);
    let check = h.load(GROUP, &alice).await.unwrap().check.unwrap();
    let payload = render::transfer_payload(GROUP, check.id);
    assert_eq!(
        q.url(PRIVATE_LINK),
        format!("https://t.me/{BOT_USERNAME}?start={payload}")
    );
    assert!(payload.starts_with("gm1001234567890_"), "{payload}");
    assert_eq!(q.labels(), ["Yes", "No", PRIVATE_LINK, BACK, CANCEL]);

    let r = h.press_label(&alice, &q, "Yes").await;
    let done = one_edit(&r, GROUP);
    assert!(done.text.starts_with("✅ "));
    let all: String = sent_in(&r, GROUP).iter().map(|m| m.text.as_str()).collect();
    assert!(
        all.starts_with("🩺 <b>Check for Alice</b>\n🚨 <b>EMERGENCY</b>"),
        "{all}"
    );
    assert!(
        !all.contains(BLADDER_REASON),
        "the sensitive reason is not repeated in the group: {all}"
    );
    assert!(!all.contains("cauda equina syndrome), which needs treatment straight away"));
    assert!(all.contains(&en(&ui().bot.group_outcome_note)), "{all}");
    assert!(h.load(GROUP, &alice).await.is_none());

    // Bob reaches the same question and follows the link to a private chat.
    let r = h.text(&bob, &g, "/check").await;
    let q = one_sent(&r, GROUP);
    let r = h.press_label(&bob, &q, LOWER_BACK).await;
    let group_q = one_edit(&r, GROUP);
    let link = group_q.url(PRIVATE_LINK);
    let payload = link.split("?start=").nth(1).unwrap().to_string();

    // Someone else's link cannot take Bob's check.
    let alice_chat = private(&alice);
    let r = h
        .text(&alice, &alice_chat, &format!("/start {payload}"))
        .await;
    assert_eq!(one_sent(&r, alice_chat.id.0).text, en(&ui().bot.ended));
    assert!(sent_in(&r, GROUP).is_empty() && edited_in(&r, GROUP).is_empty());
    assert!(h.load(GROUP, &bob).await.is_some());
    assert!(h.load(alice_chat.id.0, &alice).await.is_none());
    // In the group itself, /start with the payload is only a greeting.
    let r = h.text(&bob, &g, &format!("/start {payload}")).await;
    assert_eq!(
        one_sent(&r, GROUP).text,
        render::plain(&en(&ui().bot.welcome))
    );
    assert!(h.load(GROUP, &bob).await.is_some());

    let bob_chat = private(&bob);
    let pm = bob_chat.id.0;
    let r = h.text(&bob, &bob_chat, &format!("/start {payload}")).await;
    let moved = one_edit(&r, GROUP);
    assert_eq!(moved.id(), group_q.id());
    assert_eq!(moved.text, en(&ui().bot.moved_private));
    assert!(!moved.has_buttons(), "the group message loses its buttons");
    assert!(sent_in(&r, GROUP).is_empty());
    let q = one_sent(&r, pm);
    assert!(
        q.text
            .starts_with(&format!("<i>{}</i>", en(&ui().bot.continued_here))),
        "{}",
        q.text
    );
    assert!(q.text.contains("Question 2") && q.text.contains(BLADDER_Q));
    assert!(!q.text.contains("Check for"));
    assert_eq!(q.labels(), ["Yes", "No", BACK, CANCEL]);
    assert!(
        h.load(GROUP, &bob).await.is_none(),
        "the group check is gone"
    );
    let private_check = h.load(pm, &bob).await.unwrap();
    assert_eq!(answers(&private_check), ["area=lower_back"]);
    assert_eq!(private_check.check.unwrap().message_id, Some(q.id()));

    // The group buttons are dead; the link works once.
    let r = h.press_label(&bob, &group_q, "No").await;
    assert_alert(&r, &en(&ui().bot.ended));
    assert_silent(&r);
    let r = h.text(&bob, &bob_chat, &format!("/start {payload}")).await;
    assert_eq!(one_sent(&r, pm).text, en(&ui().bot.ended));
    assert!(h.load(pm, &bob).await.is_some(), "the moved check survives");

    // In private, the outcome gives the reason in full.
    let r = h.press_label(&bob, &q, "Yes").await;
    let all: String = sent_in(&r, pm).iter().map(|m| m.text.as_str()).collect();
    assert!(all.starts_with("🚨 <b>EMERGENCY</b>"), "{all}");
    assert!(all.contains(BLADDER_REASON), "{all}");
    assert!(!all.contains(&en(&ui().bot.group_outcome_note)));
    assert!(sent_in(&r, GROUP).is_empty());
    assert!(h.load(pm, &bob).await.is_none());
}

#[tokio::test]
async fn garbage_and_forged_callback_data_is_refused_with_an_alert() {
    let mut h = Harness::new();
    let alice = user(9001, "Alice", "en");
    let carol = user(9003, "Carol", "en");
    let g = group();

    let r = h.text(&alice, &g, "/check").await;
    let q = one_sent(&r, GROUP);
    let before = h.state(GROUP, &alice).await;
    let check = h.load(GROUP, &alice).await.unwrap().check.unwrap();
    let bad = en(&ui().bot.bad_button);

    let long = "9".repeat(80);
    for data in [
        "hello",
        "",
        "1.2.3",
        "zz.1.0.lower_back",
        "L.",
        "L.../etc",
        &long,
    ] {
        let r = h.press(&alice, &q.message, data).await;
        assert_alert(&r, &bad);
        assert_silent(&r);
    }
    // No data at all (a game button).
    let r = h.dispatch(h.query(&alice).message(q.message.clone())).await;
    assert_alert(&r, &bad);

    // Carol rewrites Alice's button with herself as the owner: there is no such check of hers.
    let alice_id = alice.id.0 as i64;
    let carol_id = carol.id.0 as i64;
    let forged = callback::check_button(
        carol_id,
        check.id,
        check.version,
        Action::Choose("lower_back"),
    );
    let r = h.press(&carol, &q.message, &forged).await;
    assert_alert(&r, &en(&ui().bot.ended));
    assert_silent(&r);
    assert!(h.load(GROUP, &carol).await.is_none());
    // Or keeps Alice as the owner: not hers.
    let forged = callback::check_button(alice_id, check.id, check.version, Action::Cancel);
    let r = h.press(&carol, &q.message, &forged).await;
    assert_alert(&r, &en(&ui().bot.not_yours));
    // Alice herself with a made-up option, or another check's id.
    let forged = callback::check_button(
        alice_id,
        check.id,
        check.version,
        Action::Choose("nonsense"),
    );
    let r = h.press(&alice, &q.message, &forged).await;
    assert_alert(&r, &en(&ui().messages.unknown_option));
    assert_silent(&r);
    let forged = callback::check_button(
        alice_id,
        check.id.wrapping_add(1),
        check.version,
        Action::Choose("lower_back"),
    );
    let r = h.press(&alice, &q.message, &forged).await;
    assert_alert(&r, &en(&ui().bot.ended));
    // A button without its message (an inline message).
    let mut no_message = h.query(&alice).data(q.data(LOWER_BACK));
    no_message.message = None;
    let r = h.dispatch(no_message).await;
    assert_eq!(answer(&r), (None, false));
    assert_silent(&r);

    assert_eq!(h.state(GROUP, &alice).await, before, "nothing changed");
    // The real button still works.
    let r = h.press_label(&alice, &q, LOWER_BACK).await;
    assert!(one_edit(&r, GROUP).text.contains(BLADDER_Q));
}

#[tokio::test]
async fn an_edited_message_gets_a_hint() {
    let mut h = Harness::new();
    let hugo = user(10001, "Hugo", "en");
    let chat = private(&hugo);
    let me = chat.id.0;

    let original = MockMessageText::new()
        .id(500)
        .text("my lower back hurts")
        .from(hugo.clone())
        .chat(chat.clone());
    let r = h.dispatch(original.clone()).await;
    let q = one_sent(&r, me);
    assert!(q.text.contains(BLADDER_Q));
    let before = h.state(me, &hugo).await;

    let edited = original.text("my shins hurt").build();
    let r = h.dispatch(MockEditedMessage::new(edited)).await;
    let hint = one_sent(&r, me);
    assert_eq!(hint.text, en(&ui().bot.edited));
    assert!(hint.text.contains("edited messages"));
    assert!(r.edited_messages_text.is_empty() && r.edited_messages_reply_markup.is_empty());
    assert_eq!(h.state(me, &hugo).await, before, "the edit changed nothing");

    // In a group, edits that are not replies to the bot are ignored.
    let g = group();
    let said = MockMessageText::new()
        .id(600)
        .text("leg day!")
        .from(hugo.clone())
        .chat(g.clone());
    assert_silent(&h.dispatch(said.clone()).await);
    let r = h
        .dispatch(MockEditedMessage::new(said.text("leg day!!").build()))
        .await;
    assert_silent(&r);
}

#[tokio::test]
async fn idle_checks_are_purged_after_the_time_limit() {
    let mut h = Harness::new();
    let ivy = user(11001, "Ivy", "en");
    let chat = private(&ivy);
    let me = chat.id.0;

    let r = h.text(&ivy, &chat, "/check").await;
    let q = one_sent(&r, me);
    h.advance(3600);
    let r = h.press_label(&ivy, &q, LOWER_BACK).await;
    let q = one_edit(&r, me);
    assert_eq!(h.load(me, &ivy).await.unwrap().updated_at, T0 + 3600);

    h.advance(24 * 3600);
    assert_eq!(
        h.app.purge().await.unwrap(),
        0,
        "exactly at the limit it is kept"
    );
    h.advance(1);
    assert_eq!(h.app.purge().await.unwrap(), 1);
    assert!(h.load(me, &ivy).await.is_none());
    let r = h.press_label(&ivy, &q, "No").await;
    assert_alert(&r, &en(&ui().bot.ended));
}

#[tokio::test]
async fn commands_greet_help_and_start_checks_and_group_replies_answer() {
    let mut h = Harness::new();
    let jo = user(12001, "Jo", "en");
    let kim = user(12002, "Kim", "en");
    let chat = private(&jo);
    let me = chat.id.0;
    let g = group();

    for (cmd, text) in [
        ("/start", &ui().bot.welcome),
        ("/help", &ui().bot.help),
        ("/privacy", &ui().bot.privacy),
        ("/nonsense", &ui().bot.unknown_command),
    ] {
        let r = h.text(&jo, &chat, cmd).await;
        assert_eq!(one_sent(&r, me).text, render::plain(&en(text)), "{cmd}");
    }
    assert!(h.load(me, &jo).await.is_none());
    // Another bot's commands, and unknown ones, are left alone in a group.
    assert_silent(&h.text(&jo, &g, "/nonsense").await);
    assert_silent(&h.text(&jo, &g, "/help@other_bot").await);
    let r = h.text(&jo, &g, "/help@GymTriage_Bot").await;
    assert_eq!(one_sent(&r, GROUP).text, render::plain(&en(&ui().bot.help)));

    // The deep link t.me/<bot>?start=check starts a check.
    let r = h.text(&jo, &chat, "/start check").await;
    let q = one_sent(&r, me);
    assert!(q.text.contains("Question 1"));
    assert!(h.load(me, &jo).await.unwrap().check.is_some());
    // /check with words answers the first question at once.
    let r = h.text(&jo, &chat, "/check my lower back is stiff").await;
    let q2 = one_sent(&r, me);
    assert!(q2.text.contains(BLADDER_Q), "{}", q2.text);
    let recorded = answers(&h.load(me, &jo).await.unwrap());
    assert_eq!(recorded[0], "area=lower_back");
    assert!(
        recorded.contains(&"back_feel=dull".to_string()),
        "{recorded:?}"
    );
    // The replaced check's buttons are dead.
    let r = h.press_label(&jo, &q, BONE).await;
    assert_alert(&r, &en(&ui().bot.ended));

    // In a group, members answer by replying to the bot; a reply without a check is told so.
    let r = h.text(&kim, &g, "/check").await;
    let kq = one_sent(&r, GROUP);
    let reply = |text: &str, from: &teloxide::types::User| {
        MockMessageText::new()
            .text(text)
            .from(from.clone())
            .chat(g.clone())
            .reply_to_message(kq.message.clone())
    };
    let r = h.dispatch(reply("my shins", &kim)).await;
    assert_eq!(
        r.edited_messages_reply_markup.len(),
        1,
        "old buttons cleared"
    );
    let next = one_sent(&r, GROUP);
    assert!(
        next.text
            .starts_with("🩺 <b>Check for Kim</b> · Question 2")
    );
    assert_eq!(answers(&h.load(GROUP, &kim).await.unwrap()), ["area=bone"]);
    let r = h.dispatch(reply("my shins", &jo)).await;
    assert_eq!(
        one_sent(&r, GROUP).text,
        render::plain(&en(&ui().bot.no_check))
    );
    assert!(h.load(GROUP, &jo).await.is_none());
}

#[tokio::test]
async fn a_redelivered_update_is_not_applied_twice() {
    let mut h = Harness::new();
    let alice = user(7001, "Alice", "en");
    let chat = private(&alice);
    let me = chat.id.0;
    let r = h.text(&alice, &chat, "/check").await;
    let q = one_sent(&r, me);
    let r = h
        .press_label(&alice, &q, "A bone: shin, foot or another bone")
        .await;
    let q2 = one_edit(&r, me);
    let before = h.load(me, &alice).await.unwrap();
    assert_eq!(answers(&before), ["area=bone"]);
    // The same press delivered again: nothing is recorded or sent twice.
    let r = h.redeliver_last().await;
    assert_silent(&r);
    assert_eq!(answers(&h.load(me, &alice).await.unwrap()), ["area=bone"]);
    // And the same typed answer delivered twice counts once.
    let r = h.text(&alice, &chat, "yes").await;
    one_sent(&r, me);
    let after_typed = answers(&h.load(me, &alice).await.unwrap());
    let r = h.redeliver_last().await;
    assert_silent(&r);
    assert_eq!(answers(&h.load(me, &alice).await.unwrap()), after_typed);
    let _ = q2;
}

#[tokio::test]
async fn a_member_flooding_a_group_is_slowed_down_without_hurting_the_others() {
    // Five updates at once, then one every 100 s: the test is far faster than the refill.
    let mut h = Harness::with_limiter(gymtriage::bot::limiter::Limiter::new(5.0, 0.01));
    let (mallory, alice) = (user(8101, "Mallory", "en"), user(8102, "Alice", "en"));
    let g = group();
    let r = h.text(&mallory, &g, "/check").await;
    let q = one_sent(&r, GROUP);
    for _ in 0..4 {
        h.text(&mallory, &g, "/help").await;
    }
    // The sixth update: one warning, then silence.
    let r = h.text(&mallory, &g, "/help").await;
    assert_eq!(one_sent(&r, GROUP).text, en(&ui().bot.slow_down));
    for _ in 0..3 {
        let r = h.text(&mallory, &g, "/help").await;
        assert_silent(&r);
    }
    let r = h
        .press_label(&mallory, &q, "A bone: shin, foot or another bone")
        .await;
    assert_silent(&r);
    assert!(answers(&h.load(GROUP, &mallory).await.unwrap()).is_empty());
    // A very long text is refused by the engine like any bad answer, never a crash.
    // Alice, in the same group, is served as usual.
    let r = h.text(&alice, &g, "/check").await;
    let qa = one_sent(&r, GROUP);
    let r = h
        .press_label(&alice, &qa, "A bone: shin, foot or another bone")
        .await;
    one_edit(&r, GROUP);
    assert_eq!(
        answers(&h.load(GROUP, &alice).await.unwrap()),
        ["area=bone"]
    );
}

#[tokio::test]
async fn a_very_long_text_is_refused_politely_and_loses_nothing() {
    let mut h = Harness::new();
    let bob = user(8201, "Bob", "en");
    let chat = private(&bob);
    let me = chat.id.0;
    let r = h.text(&bob, &chat, "/check").await;
    one_sent(&r, me);
    let long = "my back hurts ".repeat(300);
    let r = h.text(&bob, &chat, &long).await;
    let again = one_sent(&r, me);
    assert!(
        again.text.contains(&en(&ui().messages.too_long)),
        "{}",
        again.text
    );
    assert!(again.text.contains("Where does it hurt?"));
    assert!(answers(&h.load(me, &bob).await.unwrap()).is_empty());
}

/// The answers of a back check that ends in self-care.
const SORENESS_LABELS: [&str; 11] = [
    "Lower back or the base of the spine",
    "No",
    "No",
    "No",
    "None of these",
    "Hours later: 12 to 72 hours after training",
    "A dull, stiff or cramping ache",
    "Spread over an area of muscle",
    "It eases as I get moving",
    "Less than 3 days",
    "None of these",
];

#[tokio::test]
async fn a_check_in_is_offered_scheduled_sent_when_due_and_raises_the_urgency() {
    let mut h = Harness::new();
    let ana = user(9101, "Ana", "en");
    let chat = private(&ana);
    let me = chat.id.0;
    let r = h.text(&ana, &chat, "/check").await;
    let mut q = one_sent(&r, me);
    let mut last = Vec::new();
    for label in SORENESS_LABELS {
        let r = h.press_label(&ana, &q, label).await;
        last = sent_in(&r, me);
        if let Some(e) = edited_in(&r, me).into_iter().next() {
            q = e;
        }
    }
    // The outcome comes with an offer; the back flow suggests 3 days.
    let offer = last.pop().unwrap();
    assert!(last.iter().any(|m| m.text.contains("Self-care")));
    assert_eq!(
        offer.labels(),
        [
            "Tomorrow",
            "In 2 days",
            "In 3 days (suggested)",
            "In a week",
            "No thanks"
        ]
    );
    let r = h.press_label(&ana, &offer, "In a week").await;
    let confirmed = one_edit(&r, me);
    assert!(confirmed.text.contains("in a week"), "{}", confirmed.text);
    assert!(!confirmed.has_buttons());
    let scheduled = h.app.store.checkins_of(ana.id.0 as i64).await.unwrap();
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].flow, "back");
    // Pressing the offer again schedules nothing more.
    let r = h.press_label(&ana, &offer, "Tomorrow").await;
    assert_alert(&r, &en(&ui().bot.ended));
    assert_eq!(
        h.app
            .store
            .checkins_of(ana.id.0 as i64)
            .await
            .unwrap()
            .len(),
        1
    );

    // Not due yet: nothing is sent.
    h.advance_days(6);
    let r = h.tick(&ana).await;
    assert!(sent_in(&r, me).is_empty());
    // Due: the check-in arrives once, in the private chat.
    h.advance_days(2);
    let r = h.tick(&ana).await;
    let status = one_sent(&r, me);
    assert!(
        status.text.contains("8 day(s) since your check"),
        "{}",
        status.text
    );
    assert_eq!(
        status.labels(),
        ["Gone", "Better", "About the same", "Worse"]
    );
    let r = h.tick(&ana).await;
    assert!(sent_in(&r, me).is_empty(), "sent exactly once");
    assert!(
        h.app
            .store
            .checkins_of(ana.id.0 as i64)
            .await
            .unwrap()
            .is_empty()
    );

    // About the same after 8 days: the back warning signs are asked again, then a new outcome.
    let r = h.press_label(&ana, &status, "About the same").await;
    let mut step = one_edit(&r, me);
    assert!(step.text.contains("bladder"), "{}", step.text);
    for label in ["No", "No", "No", "None of these"] {
        let r = h.press_label(&ana, &step, label).await;
        match edited_in(&r, me).into_iter().next() {
            Some(e) if e.has_buttons() => step = e,
            _ => {
                let sent = sent_in(&r, me);
                let all: String = sent.iter().map(|m| m.text.as_str()).collect();
                assert!(
                    all.contains("See a professional if it doesn't settle"),
                    "{all}"
                );
                assert!(
                    all.contains("Still hurting 8 days after your check"),
                    "{all}"
                );
                // And one more check-in is offered.
                assert!(sent.last().unwrap().text.contains("ask once more"));
                return;
            }
        }
    }
    panic!("the check-in did not end");
}

#[tokio::test]
async fn a_group_outcome_offers_the_check_in_through_a_private_chat_and_checkins_lists_it() {
    let mut h = Harness::new();
    let bo = user(9201, "Bo", "es");
    let g = group();
    let r = h.text(&bo, &g, "/check").await;
    let mut q = one_sent(&r, GROUP);
    let mut last = Vec::new();
    for label in [
        "Una articulación: rodilla, hombro, codo, muñeca o tobillo",
        "Sí",
        "No",
        "Sí",
        "Una molestia leve",
        "Después de la sesión",
        "Menos de 3 días",
        "Nada de esto",
    ] {
        let r = h.press_label(&bo, &q, label).await;
        last = sent_in(&r, GROUP);
        if let Some(e) = edited_in(&r, GROUP).into_iter().next() {
            q = e;
        }
    }
    let offer = last.pop().unwrap();
    // Never a check-in in the group: the offer is a link to a private chat.
    let link = offer.url("⏰ Programar un seguimiento (chat privado)");
    let payload = link.split("start=").nth(1).unwrap().to_string();
    assert!(payload.starts_with("om"), "{link}");
    let chat = private(&bo);
    let me = chat.id.0;
    let r = h.text(&bo, &chat, &format!("/start {payload}")).await;
    let private_offer = one_sent(&r, me);
    assert!(
        private_offer
            .labels()
            .contains(&"En 3 días (recomendado)".to_string())
    );
    let r = h
        .press_label(&bo, &private_offer, "En 3 días (recomendado)")
        .await;
    one_edit(&r, me);
    // /checkins lists it; pressing it cancels it.
    let r = h.text(&bo, &chat, "/checkins").await;
    let list = one_sent(&r, me);
    assert_eq!(list.labels().len(), 1);
    let label = list.labels()[0].clone();
    let r = h.press_label(&bo, &list, &label).await;
    assert_eq!(answer(&r).0.as_deref(), Some("Seguimiento cancelado."));
    assert!(
        h.app
            .store
            .checkins_of(bo.id.0 as i64)
            .await
            .unwrap()
            .is_empty()
    );
    // Due time passes: nothing is sent anywhere.
    h.advance_days(4);
    let r = h.tick(&bo).await;
    assert!(r.sent_messages.is_empty());
}

#[tokio::test]
async fn forget_removes_scheduled_check_ins() {
    let mut h = Harness::new();
    let cy = user(9301, "Cy", "en");
    let chat = private(&cy);
    let me = chat.id.0;
    let r = h.text(&cy, &chat, "/check").await;
    let mut q = one_sent(&r, me);
    let mut last = Vec::new();
    for label in SORENESS_LABELS {
        let r = h.press_label(&cy, &q, label).await;
        last = sent_in(&r, me);
        if let Some(e) = edited_in(&r, me).into_iter().next() {
            q = e;
        }
    }
    let offer = last.pop().unwrap();
    h.press_label(&cy, &offer, "Tomorrow").await;
    assert_eq!(
        h.app.store.checkins_of(cy.id.0 as i64).await.unwrap().len(),
        1
    );
    h.text(&cy, &chat, "/forget").await;
    assert!(
        h.app
            .store
            .checkins_of(cy.id.0 as i64)
            .await
            .unwrap()
            .is_empty()
    );
    h.advance_days(2);
    let r = h.tick(&cy).await;
    assert!(r.sent_messages.is_empty());
}
