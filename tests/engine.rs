//! Behaviour of the triage engine: red flags, free text, undo, restart, bad input, storage.

mod common;

use common::*;
use gymtriage::{Input, InputError, Step, Urgency};

/// Answers for a back check that looks like ordinary soreness.
const BACK_SORENESS: &[(&str, &str)] = &[
    ("area", "lower_back"),
    ("back_bladder", "no"),
    ("back_saddle", "no"),
    ("back_weakness", "no"),
    ("back_nerve", "no"),
    ("back_onset", "delayed"),
    ("back_feel", "dull"),
    ("back_spread", "diffuse"),
    ("back_movement", "eases"),
    ("back_days", "short"),
    ("back_context", "none"),
];

#[test]
fn back_soreness_ends_in_self_care_within_eleven_questions() {
    let mut s = session("en");
    let asked = run_profile(&mut s, BACK_SORENESS);
    assert_eq!(urgency(&s), Some(Urgency::SelfCare));
    assert!(asked.len() <= 11, "{asked:?}");
}

#[test]
fn bladder_problem_stops_the_dialogue_with_emergency() {
    let mut s = session("en");
    choose(&mut s, "lower_back");
    assert_eq!(asking(&s).as_deref(), Some("back_bladder"));
    choose(&mut s, "yes");
    assert_eq!(asking(&s), None, "no more questions after a red flag");
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
}

#[test]
fn saddle_numbness_stops_the_dialogue_with_emergency() {
    let mut s = session("es");
    choose(&mut s, "upper_back");
    choose(&mut s, "no");
    assert_eq!(asking(&s).as_deref(), Some("back_saddle"));
    choose(&mut s, "yes");
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
}

#[test]
fn progressive_leg_weakness_stops_the_dialogue_with_emergency() {
    let mut s = session("en");
    choose(&mut s, "lower_back");
    choose(&mut s, "no");
    choose(&mut s, "no");
    choose(&mut s, "worse");
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
}

#[test]
fn red_flags_are_the_first_questions_of_a_back_check() {
    let mut s = session("en");
    choose(&mut s, "upper_back");
    let mut asked = Vec::new();
    for _ in 0..3 {
        asked.push(asking(&s).unwrap());
        choose(&mut s, "no");
    }
    assert_eq!(asked, ["back_bladder", "back_saddle", "back_weakness"]);
}

#[test]
fn free_text_red_flag_at_any_question_escalates_at_once_in_both_languages() {
    let cases = [
        ("en", "I can't control my bladder"),
        ("en", "my groin feels numb"),
        ("en", "I wet myself this morning"),
        ("en", "my leg is getting weaker"),
        ("es", "no siento la entrepierna"),
        ("es", "se me escapa la orina"),
        ("es", "tengo la entrepierna dormida"),
        // The other language than the session's is scanned too.
        ("en", "no puedo controlar la vejiga"),
        ("es", "numbness in my groin"),
    ];
    for (lang, text) in cases {
        // At the first question, in the middle of a muscle check, and mid back check.
        for prefix in [
            &[][..],
            &["elsewhere", "muscle", "during"][..],
            &["lower_back", "no"][..],
        ] {
            let mut s = session(lang);
            for o in prefix {
                choose(&mut s, o);
            }
            say(&mut s, text);
            assert_eq!(
                urgency(&s),
                Some(Urgency::Emergency),
                "{text:?} after {prefix:?} must escalate"
            );
        }
    }
}

#[test]
fn negated_red_flags_do_not_escalate() {
    for (lang, text, area) in [
        ("en", "lower back pain, no bladder problems", "lower_back"),
        (
            "en",
            "my lower back aches but I'm not numb in the groin",
            "lower_back",
        ),
        (
            "es",
            "me duele la zona lumbar, sin problemas de vejiga",
            "lower_back",
        ),
    ] {
        let mut s = session(lang);
        say(&mut s, text);
        assert_eq!(urgency(&s), None, "{text:?}");
        assert_eq!(
            asking(&s).as_deref(),
            Some("back_bladder"),
            "{text:?} → {area}"
        );
    }
}

#[test]
fn a_description_at_the_first_question_answers_the_questions_it_covers() {
    let mut s = session("en");
    say(&mut s, "my lower back aches since yesterday's deadlifts");
    assert_eq!(asking(&s).as_deref(), Some("back_bladder"));
    let mut answers = BACK_SORENESS.to_vec();
    answers.retain(|(q, _)| *q != "area" && *q != "back_context");
    let asked = run_profile(&mut s, &answers);
    assert!(!asked.contains(&"area".to_string()));
    assert!(
        !asked.contains(&"back_context".to_string()),
        "deadlifts already said what came before the pain: {asked:?}"
    );
    let d = dialogues();
    let Step::Done(o) = d.current(&s) else {
        panic!("not done")
    };
    assert!(
        o.reasons.iter().any(|r| r.text.contains("Heavy loads")),
        "the described deadlifts give a reason: {:?}",
        o.reasons
    );
}

#[test]
fn a_red_flag_in_the_first_description_ends_the_check_before_any_question() {
    let mut s = session("en");
    say(
        &mut s,
        "Lower back pain after squats and now I can't feel my groin",
    );
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
}

#[test]
fn a_description_naming_back_and_legs_is_treated_as_back_pain() {
    let mut s = session("en");
    say(&mut s, "my lower back hurts and the pain goes down my legs");
    assert_eq!(asking(&s).as_deref(), Some("back_bladder"));
}

#[test]
fn spanish_description_finds_the_area() {
    let mut s = session("es");
    say(&mut s, "Me duelen las espinillas desde que empecé a correr");
    assert_eq!(asking(&s).as_deref(), Some("bone_weight"));
}

#[test]
fn typed_answers_accept_numbers_labels_and_yes_no_words() {
    let d = dialogues();
    let mut s = session("es");
    say(&mut s, "1"); // lower back
    say(&mut s, "No"); // bladder
    say(&mut s, "no"); // saddle
    assert_eq!(asking(&s).as_deref(), Some("back_weakness"));
    say(&mut s, "Sí, pero no va a peor");
    assert_eq!(asking(&s).as_deref(), Some("back_nerve"));
    assert_eq!(d.urgency_so_far(&s), Urgency::Urgent);
    let mut s = session("en");
    say(&mut s, "joint");
    assert_eq!(asking(&s).as_deref(), Some("joint_use"));
    say(&mut s, "yes");
    assert_eq!(asking(&s).as_deref(), Some("joint_swelling"));
}

#[test]
fn back_undoes_the_last_turn_and_restart_starts_over() {
    let d = dialogues();
    let mut s = session("en");
    assert_eq!(
        d.answer(&mut s, Input::Back).unwrap_err(),
        InputError::NothingToUndo
    );
    choose(&mut s, "bone");
    choose(&mut s, "yes");
    assert_eq!(asking(&s).as_deref(), Some("bone_rest"));
    d.answer(&mut s, Input::Back).unwrap();
    assert_eq!(asking(&s).as_deref(), Some("bone_weight"));
    d.answer(&mut s, Input::Back).unwrap();
    assert_eq!(asking(&s).as_deref(), Some("area"));
    // A described turn is undone as a whole.
    say(&mut s, "lower back ache after deadlifts");
    d.answer(&mut s, Input::Back).unwrap();
    assert_eq!(asking(&s).as_deref(), Some("area"));
    assert_eq!(s, session("en"));
    // Undo works after an outcome, too, and restart from anywhere.
    choose(&mut s, "lower_back");
    choose(&mut s, "yes");
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
    d.answer(&mut s, Input::Back).unwrap();
    assert_eq!(asking(&s).as_deref(), Some("back_bladder"));
    choose(&mut s, "no");
    d.answer(&mut s, Input::Restart).unwrap();
    assert_eq!(asking(&s).as_deref(), Some("area"));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let d = dialogues();
    let mut s = session("en");
    choose(&mut s, "lower_back");
    let before = s.clone();
    let long = "x".repeat(gymtriage::engine::MAX_TEXT_CHARS + 1);
    for (input, err) in [
        (Input::Text("   "), InputError::Empty),
        (Input::Text(&long), InputError::TooLong),
        (Input::Text("purple elephant"), InputError::NotUnderstood),
        (Input::Text("?!"), InputError::NotUnderstood),
        (Input::Text("7"), InputError::NotUnderstood),
        (Input::Choice("maybe"), InputError::UnknownOption),
    ] {
        assert_eq!(d.answer(&mut s, input).unwrap_err(), err, "{input:?}");
        assert_eq!(s, before, "{input:?} must not change the session");
        assert!(!err.message(d, s.lang()).is_empty());
    }
}

#[test]
fn answers_after_the_outcome_are_refused_but_a_red_flag_still_escalates() {
    let d = dialogues();
    let mut s = session("en");
    run_profile(&mut s, BACK_SORENESS);
    assert_eq!(urgency(&s), Some(Urgency::SelfCare));
    assert_eq!(
        d.answer(&mut s, Input::Choice("no")).unwrap_err(),
        InputError::Finished
    );
    assert_eq!(
        d.answer(&mut s, Input::Text("thanks")).unwrap_err(),
        InputError::Finished
    );
    say(&mut s, "oh and I lost control of my bowels");
    assert_eq!(urgency(&s), Some(Urgency::Emergency));
}

#[test]
fn sessions_survive_a_round_trip_through_their_stored_form() {
    let d = dialogues();
    let mut s = session("es");
    say(
        &mut s,
        "me duele la zona lumbar desde el peso muerto de ayer",
    );
    choose(&mut s, "no");
    let record = d.to_record(&s);
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains("peso muerto"), "free text is never stored");
    let back: gymtriage::engine::SessionRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(d.from_record(&back), s);
}

#[test]
fn stored_answers_to_removed_questions_are_dropped() {
    let d = dialogues();
    let mut record = d.to_record(&session("en"));
    record.answers.push(gymtriage::engine::AnswerRecord {
        question: "area".into(),
        option: "upper_back".into(),
        turn: 1,
    });
    record.answers.push(gymtriage::engine::AnswerRecord {
        question: "no_such_question".into(),
        option: "x".into(),
        turn: 2,
    });
    record.lang = "fr".into();
    let s = d.from_record(&record);
    assert_eq!(asking(&s).as_deref(), Some("back_bladder"));
    assert_eq!(d.lang_code(s.lang()), "en");
}

#[test]
fn outcomes_cite_sources_and_carry_a_disclaimer() {
    let d = dialogues();
    let mut s = session("en");
    run_profile(&mut s, BACK_SORENESS);
    let Step::Done(o) = d.current(&s) else {
        panic!()
    };
    assert!(
        o.sources
            .contains(&"Why Does My Back Hurt After Working Out?")
    );
    assert!(!o.disclaimer.is_empty());
    assert!(!o.advice.is_empty() && !o.watch_for.is_empty());
}

#[test]
fn sensitive_reasons_are_marked_for_group_chats() {
    let d = dialogues();
    let mut s = session("en");
    choose(&mut s, "lower_back");
    choose(&mut s, "yes");
    let Step::Done(o) = d.current(&s) else {
        panic!()
    };
    assert!(o.reasons.iter().all(|r| r.sensitive));
}
