//! Property tests over random answer profiles: every check ends within the question cap, and
//! adding a symptom never lowers the urgency.

mod common;

use common::*;
use gymtriage::{Input, Step, Urgency};
use proptest::prelude::*;

/// A person's truth: for every question, the option they would pick (index modulo count).
fn profile() -> impl Strategy<Value = Vec<u8>> {
    let n = dialogues().questions().len();
    proptest::collection::vec(any::<u8>(), n)
}

/// The option a profile value stands for. Most values pick a non-symptom answer, so that
/// random checks go deep instead of stopping at the first red flag.
fn pick(q: &gymtriage::dialogue::model::Question, v: u8) -> usize {
    let calm: Vec<usize> = (0..q.options.len())
        .filter(|&i| !q.options[i].is_positive())
        .collect();
    if v < 200 && !calm.is_empty() {
        calm[v as usize % calm.len()]
    } else {
        v as usize % q.options.len()
    }
}

/// Runs a check answering every question from `profile`; returns the urgency and the number
/// of questions asked.
fn run(profile: &[u8], lang: &str) -> (Urgency, usize) {
    let (u, asked) = run_path(profile, lang, None);
    (u, asked.len())
}

/// Like [`run`], returning the indices of the questions asked; `forced` overrides the answer
/// (question index, option index) to one question.
fn run_path(profile: &[u8], lang: &str, forced: Option<(usize, usize)>) -> (Urgency, Vec<usize>) {
    let d = dialogues();
    let mut s = session(lang);
    let mut asked = Vec::new();
    loop {
        match d.current(&s) {
            Step::Done(o) => return (o.urgency, asked),
            Step::Ask(a) => {
                assert!(asked.len() < d.max_questions(), "more than the cap");
                let qi = d.questions().iter().position(|q| q.id == a.id()).unwrap();
                asked.push(qi);
                let q = &d.questions()[qi];
                let o = match forced {
                    Some((fq, fo)) if fq == qi => &q.options[fo],
                    _ => &q.options[pick(q, profile[qi])],
                };
                d.answer(&mut s, Input::Choice(&o.id)).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_profile_ends_in_an_outcome_within_the_cap(p in profile()) {
        let (_, asked) = run(&p, "en");
        prop_assert!(asked <= dialogues().max_questions());
    }

    #[test]
    fn adding_a_symptom_never_lowers_the_urgency(p in profile(), q in any::<prop::sample::Index>(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let d = dialogues();
        // A question on this person's path that has both a symptom and a non-symptom answer.
        let (_, path) = run_path(&p, "en", None);
        let eligible: Vec<usize> = path
            .into_iter()
            .filter(|&i| {
                let o = &d.questions()[i].options;
                o.iter().any(|o| o.is_positive()) && o.iter().any(|o| !o.is_positive())
            })
            .collect();
        prop_assume!(!eligible.is_empty());
        let qi = eligible[q.index(eligible.len())];
        let question = &d.questions()[qi];
        let (positive, negative): (Vec<usize>, Vec<usize>) =
            (0..question.options.len()).partition(|&i| question.options[i].is_positive());
        let without = negative[a.index(negative.len())];
        let with = positive[b.index(positive.len())];
        let (before, _) = run_path(&p, "en", Some((qi, without)));
        let (after, _) = run_path(&p, "en", Some((qi, with)));
        prop_assert!(
            after >= before,
            "answering {}.{} instead of {}.{} lowered {before} to {after}",
            question.id, question.options[with].id, question.id, question.options[without].id
        );
    }

    #[test]
    fn both_languages_reach_the_same_urgency(p in profile()) {
        prop_assert_eq!(run(&p, "en").0, run(&p, "es").0);
    }

    #[test]
    fn any_input_sequence_keeps_the_session_usable(inputs in proptest::collection::vec(input(), 0..40)) {
        let d = dialogues();
        let mut s = session("en");
        for i in &inputs {
            let input = match i {
                Act::Choice(k) => match d.current(&s) {
                    Step::Ask(a) => {
                        let ids: Vec<&str> = a.options().map(|(id, _)| id).collect();
                        Input::Choice(ids[*k % ids.len()])
                    }
                    Step::Done(_) => Input::Choice("yes"),
                },
                Act::Text(t) => Input::Text(t),
                Act::Back => Input::Back,
                Act::Restart => Input::Restart,
            };
            let _ = d.answer(&mut s, input);
        }
        // Whatever happened, answering the first option of each question still ends the check.
        for _ in 0..=d.max_questions() {
            let Step::Ask(a) = d.current(&s) else { break };
            let first = a.options().next().unwrap().0;
            d.answer(&mut s, Input::Choice(first)).unwrap();
        }
        prop_assert!(d.current(&s).is_done());
    }
}

#[derive(Debug, Clone)]
enum Act {
    Choice(usize),
    Text(String),
    Back,
    Restart,
}

fn input() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => any::<usize>().prop_map(Act::Choice),
        2 => "\\PC{0,40}".prop_map(Act::Text),
        1 => Just(Act::Back),
        1 => Just(Act::Restart),
    ]
}

#[test]
fn a_typical_check_asks_five_to_ten_questions_outside_the_back() {
    // The shortest complete path through each non-back flow.
    for (profile, expected) in [
        (
            &[
                ("area", "bone"),
                ("bone_weight", "yes"),
                ("bone_rest", "no"),
                ("bone_spot", "strip"),
                ("bone_swelling", "no"),
                ("bone_course", "new"),
                ("bone_context", "impact"),
            ][..],
            7,
        ),
        (
            &[
                ("area", "joint"),
                ("joint_use", "yes"),
                ("joint_swelling", "no"),
                ("joint_range", "yes"),
                ("joint_feel", "mild"),
                ("joint_onset", "after"),
                ("joint_days", "short"),
                ("joint_context", "none"),
            ][..],
            8,
        ),
        (
            &[
                ("area", "elsewhere"),
                ("tissue", "muscle"),
                ("muscle_onset", "delayed"),
                ("muscle_feel", "dull"),
                ("muscle_spread", "diffuse"),
                ("muscle_movement", "eases"),
                ("muscle_bruise", "no"),
                ("muscle_days", "short"),
                ("muscle_context", "new"),
            ][..],
            9,
        ),
    ] {
        let mut s = session("en");
        let asked = run_profile(&mut s, profile);
        assert_eq!(asked.len(), expected);
        assert_eq!(urgency(&s), Some(Urgency::SelfCare), "{profile:?}");
    }
}
