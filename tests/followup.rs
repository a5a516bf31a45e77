//! Follow-up check-ins: the time rules of every area, the warning signs asked again, and
//! bad input. Also the validation of followup.toml.

mod common;

use std::path::Path;

use common::dialogues;
use gymtriage::Urgency;
use gymtriage::engine::{FollowUp, FollowUpEnd, FollowUpInput, FollowUpStep, InputError};

fn checkin(flow: &str, urgency: Urgency, days: u32, lang: &str) -> FollowUp {
    FollowUp {
        flow: flow.into(),
        urgency,
        days,
        lang: lang.into(),
        status: None,
        answers: vec![],
    }
}

/// Answers `inputs` (button ids) in order and returns how the check-in ends.
fn run<'d>(f: &mut FollowUp, inputs: &[&str]) -> FollowUpEnd<'d>
where
    'static: 'd,
{
    let d = dialogues();
    for i in inputs {
        d.followup_answer(f, FollowUpInput::Choice(i))
            .unwrap_or_else(|e| panic!("{i:?} refused: {e}"));
    }
    match d.followup_step(f) {
        FollowUpStep::Done(end) => end,
        other => panic!("not finished after {inputs:?}: {other:?}"),
    }
}

fn outcome(end: FollowUpEnd<'_>) -> (Urgency, Vec<String>) {
    match end {
        FollowUpEnd::Outcome(o) => (
            o.urgency,
            o.reasons.iter().map(|r| r.text.to_string()).collect(),
        ),
        other => panic!("expected a new outcome, got {other:?}"),
    }
}

/// The "no warning sign" answers of each area's re-asked questions.
fn calm(flow: &str) -> Vec<&'static str> {
    match flow {
        "back" => vec!["no", "no", "no", "no"],
        "bone" => vec!["yes", "no", "no", "no"],
        "joint" => vec!["yes", "no"],
        "muscle" => vec!["no"],
        _ => unreachable!(),
    }
}

#[test]
fn the_check_in_starts_with_how_is_it_now_and_the_days() {
    let d = dialogues();
    let f = checkin("back", Urgency::SelfCare, 8, "en");
    let FollowUpStep::Status { text, options } = d.followup_step(&f) else {
        panic!()
    };
    assert!(text.contains("8 day"), "{text}");
    let ids: Vec<&str> = options.iter().map(|o| o.0).collect();
    assert_eq!(ids, ["gone", "better", "same", "worse"]);
}

#[test]
fn gone_closes_and_better_encourages_with_prevention_in_every_area() {
    for flow in ["back", "bone", "joint", "muscle"] {
        let mut f = checkin(flow, Urgency::SelfCare, 3, "en");
        assert!(matches!(run(&mut f, &["gone"]), FollowUpEnd::Gone { .. }));
        let mut f = checkin(flow, Urgency::SelfCare, 3, "es");
        match run(&mut f, &["better"]) {
            FollowUpEnd::Better { prevention, .. } => assert!(!prevention.is_empty(), "{flow}"),
            other => panic!("{flow}: {other:?}"),
        }
    }
}

#[test]
fn the_same_past_each_areas_limit_raises_the_urgency_and_says_how_long() {
    let d = dialogues();
    for flow in ["back", "bone", "joint", "muscle"] {
        let limit = d.followup_area(flow).unwrap().limit_days;
        // Before the limit, with no warning sign: keep going.
        if limit > 1 {
            let mut f = checkin(flow, Urgency::SelfCare, limit - 1, "en");
            let mut inputs = vec!["same"];
            inputs.extend(calm(flow));
            assert!(
                matches!(run(&mut f, &inputs), FollowUpEnd::SameEarly { .. }),
                "{flow} before its limit"
            );
        }
        // At the limit: a new, more urgent outcome whose reason names the days.
        let days = limit + 1;
        let mut f = checkin(flow, Urgency::SelfCare, days, "en");
        let mut inputs = vec!["same"];
        inputs.extend(calm(flow));
        let (urgency, reasons) = outcome(run(&mut f, &inputs));
        assert!(urgency >= Urgency::SeeProfessional, "{flow}");
        assert!(
            reasons.iter().any(|r| r.contains(&format!("{days} days"))),
            "{flow}: {reasons:?}"
        );
    }
}

#[test]
fn worse_raises_the_urgency_in_every_area_and_never_lowers_it() {
    for (flow, expected) in [
        ("back", Urgency::SeeProfessional),
        ("bone", Urgency::Urgent),
        ("joint", Urgency::SeeProfessional),
        ("muscle", Urgency::SeeProfessional),
    ] {
        for original in [Urgency::SelfCare, Urgency::SeeProfessional] {
            let mut f = checkin(flow, original, 1, "en");
            let mut inputs = vec!["worse"];
            inputs.extend(calm(flow));
            let (urgency, reasons) = outcome(run(&mut f, &inputs));
            assert_eq!(urgency, expected.max(original), "{flow}");
            assert!(!reasons.is_empty());
        }
    }
}

#[test]
fn a_red_flag_in_a_back_check_in_is_an_emergency_at_once() {
    let d = dialogues();
    let mut f = checkin("back", Urgency::SelfCare, 2, "en");
    d.followup_answer(&mut f, FollowUpInput::Choice("same"))
        .unwrap();
    let FollowUpStep::Ask(ask) = d.followup_step(&f) else {
        panic!()
    };
    assert_eq!(
        ask.id(),
        "back_bladder",
        "warning signs are asked as in a check"
    );
    let step = d
        .followup_answer(&mut f, FollowUpInput::Choice("yes"))
        .unwrap();
    let FollowUpStep::Done(end) = step else {
        panic!()
    };
    assert_eq!(outcome(end).0, Urgency::Emergency);

    // Typed, at the very first question, in Spanish.
    let mut f = checkin("muscle", Urgency::SelfCare, 2, "es");
    let step = d
        .followup_answer(
            &mut f,
            FollowUpInput::Text("igual, y ahora no siento la entrepierna"),
        )
        .unwrap();
    let FollowUpStep::Done(end) = step else {
        panic!()
    };
    assert_eq!(outcome(end).0, Urgency::Emergency);
}

#[test]
fn a_warning_sign_asked_again_raises_the_urgency_even_early() {
    let mut f = checkin("bone", Urgency::SelfCare, 1, "en");
    let (urgency, reasons) = outcome(run(&mut f, &["same", "yes", "no", "yes", "no"]));
    assert_eq!(urgency, Urgency::Urgent);
    assert!(
        reasons.iter().any(|r| r.contains("hot spot")),
        "{reasons:?}"
    );
}

#[test]
fn typed_answers_work_and_bad_input_changes_nothing() {
    let d = dialogues();
    let mut f = checkin("joint", Urgency::SeeProfessional, 5, "es");
    let before = f.clone();
    for (input, err) in [
        (FollowUpInput::Text("  "), InputError::Empty),
        (FollowUpInput::Text("púrpura"), InputError::NotUnderstood),
        (FollowUpInput::Choice("maybe"), InputError::UnknownOption),
    ] {
        assert_eq!(d.followup_answer(&mut f, input).unwrap_err(), err);
        assert_eq!(f, before);
    }
    d.followup_answer(&mut f, FollowUpInput::Text("Más o menos igual"))
        .unwrap();
    d.followup_answer(&mut f, FollowUpInput::Text("sí"))
        .unwrap();
    d.followup_answer(&mut f, FollowUpInput::Text("2")).unwrap();
    let FollowUpStep::Done(end) = d.followup_step(&f) else {
        panic!()
    };
    assert_eq!(outcome(end).0, Urgency::SeeProfessional);
    assert_eq!(
        d.followup_answer(&mut f, FollowUpInput::Choice("gone"))
            .unwrap_err(),
        InputError::Finished
    );
}

#[test]
fn only_self_care_and_see_professional_outcomes_offer_a_check_in() {
    let d = dialogues();
    assert!(d.followup_offered("back", Urgency::SelfCare));
    assert!(d.followup_offered("bone", Urgency::SeeProfessional));
    assert!(!d.followup_offered("back", Urgency::Urgent));
    assert!(!d.followup_offered("back", Urgency::Emergency));
    assert_eq!(d.followup_area("muscle").unwrap().default_days, 2);
}

fn load_with(edit: impl Fn(&mut String)) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues");
    let mut files = gymtriage::dialogue::read_files(&dir).unwrap();
    let key = Path::new("followup.toml").to_path_buf();
    let mut text = String::from_utf8(files[&key].clone()).unwrap();
    edit(&mut text);
    files.insert(key, text.into_bytes());
    match gymtriage::dialogue::load_files(&dir, &files) {
        Ok(_) => vec![],
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn followup_rules_are_validated_with_positions() {
    let errors = load_with(|t| {
        *t = t.replacen(
            "recheck = [\"muscle_bruise\"]",
            "recheck = [\"back_bladder\"]",
            1,
        )
    });
    assert!(
        errors.iter().any(|e| e.contains("followup.toml:")
            && e.contains("`back_bladder` is not part of flow `muscle`")),
        "{errors:?}"
    );
    let errors = load_with(|t| *t = t.replacen("flow = \"joint\"", "flow = \"knee\"", 1));
    assert!(
        errors.iter().any(|e| e.contains("unknown flow `knee`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("flow `joint` has no [[area]]")),
        "{errors:?}"
    );
    let errors = load_with(|t| *t = t.replacen("default_days = 2", "default_days = 5", 1));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("default_days must be one of")),
        "{errors:?}"
    );
    let errors = load_with(|t| {
        *t = t.replacen(
            "better = { en = \"Better\", es = \"Mejor\" }",
            "better = { en = \"Better\" }",
            1,
        )
    });
    assert!(
        errors.iter().any(|e| e.contains("missing translation")),
        "{errors:?}"
    );
}
