//! Golden transcripts of whole conversations (insta snapshots in tests/snapshots/). Together
//! they reach every urgency level and cite every article.

mod common;

use std::collections::BTreeSet;

use common::*;
use gymtriage::{Input, Step, Urgency};

/// Plays `inputs` (typed as a person would, or `#id` for a button press) and returns the
/// conversation as text, plus the outcome's level and sources.
fn play(lang: &str, inputs: &[&str]) -> (String, Urgency, Vec<String>) {
    let d = dialogues();
    let mut s = session(lang);
    let mut out = String::new();
    let mut inputs = inputs.iter();
    loop {
        match d.current(&s) {
            Step::Done(o) => {
                out.push_str(&gymtriage::front::render_outcome(d, &s, &o));
                assert!(inputs.next().is_none(), "inputs left after the outcome");
                let sources = o.sources.iter().map(|s| s.to_string()).collect();
                return (out, o.urgency, sources);
            }
            Step::Ask(a) => {
                out.push_str(&format!("\nbot [{}]: {}\n", a.id(), a.text()));
                for (i, (_, label)) in a.options().enumerate() {
                    out.push_str(&format!("  {}. {label}\n", i + 1));
                }
                let Some(&line) = inputs.next() else {
                    panic!("ran out of inputs at {}:\n{out}", a.id())
                };
                out.push_str(&format!("you: {line}\n"));
                let input = match line {
                    "back" => Input::Back,
                    "restart" => Input::Restart,
                    l if l.starts_with('#') => Input::Choice(&l[1..]),
                    l => Input::Text(l),
                };
                if let Err(e) = d.answer(&mut s, input) {
                    out.push_str(&format!("bot: {}\n", e.message(d, s.lang())));
                }
            }
        }
    }
}

struct Case {
    name: &'static str,
    lang: &'static str,
    inputs: &'static [&'static str],
    urgency: Urgency,
}

const CASES: &[Case] = &[
    Case {
        name: "back_soreness_self_care_en",
        lang: "en",
        inputs: &[
            "my lower back aches since yesterday's deadlifts",
            "no",
            "no",
            "no",
            "4",
            "hours later",
            "dull",
            "2",
            "1",
            "1",
        ],
        urgency: Urgency::SelfCare,
    },
    Case {
        name: "back_bladder_emergency_es",
        lang: "es",
        inputs: &["me duele la espalda baja después de sentadillas", "sí"],
        urgency: Urgency::Emergency,
    },
    Case {
        name: "back_sciatica_urgent_en",
        lang: "en",
        inputs: &[
            "#upper_back",
            "#no",
            "#no",
            "#no",
            "the pain shoots down my leg below the knee",
            "#during",
            "#sharp",
            "#spot",
            "#worse",
            "#limited",
            "#days",
            "#heavy",
        ],
        urgency: Urgency::Urgent,
    },
    Case {
        name: "sacral_stress_fracture_runner_urgent_en",
        lang: "en",
        inputs: &[
            "pain at the base of my spine, I run a lot",
            "#no",
            "#no",
            "#no",
            "#no",
            "#gradual",
            "#dull",
            "#spot",
            "#same",
            "#week",
            "#increase",
        ],
        urgency: Urgency::Urgent,
    },
    Case {
        name: "shin_splints_self_care_en_with_undo",
        lang: "en",
        inputs: &[
            "my shins hurt after running",
            "yes",
            "no",
            "back",
            "#no",
            "it's sore along the inner edge of the shin",
            "#no",
            "#new",
            "#impact",
        ],
        urgency: Urgency::SelfCare,
    },
    Case {
        name: "foot_hot_spot_urgent_es",
        lang: "es",
        inputs: &["#bone", "sí", "no", "1", "no", "2", "#diet"],
        urgency: Urgency::Urgent,
    },
    Case {
        name: "knee_overuse_see_professional_en",
        lang: "en",
        inputs: &[
            "my knee hurts after cycling",
            "yes",
            "no",
            "yes",
            "sharp",
            "#gradual",
            "#long",
            "#repetitive",
        ],
        urgency: Urgency::SeeProfessional,
    },
    Case {
        name: "shoulder_mild_self_care_es",
        lang: "es",
        inputs: &[
            "me molesta el hombro",
            "sí",
            "no",
            "sí",
            "1",
            "#after",
            "1",
            "#load",
        ],
        urgency: Urgency::SelfCare,
    },
    Case {
        name: "quads_doms_self_care_en",
        lang: "en",
        inputs: &[
            "my quads are sore",
            "#muscle",
            "#delayed",
            "#dull",
            "#diffuse",
            "#eases",
            "#no",
            "#short",
            "#new",
        ],
        urgency: Urgency::SelfCare,
    },
    Case {
        name: "hamstring_strain_see_professional_with_bad_input_en",
        lang: "en",
        inputs: &[
            "",
            "hamstring",
            "purple",
            "#muscle",
            "I felt a twinge during the sprint",
            "sharp",
            "#spot",
            "#worse",
            "yes, bruised",
            "#short",
            "#none",
        ],
        urgency: Urgency::SeeProfessional,
    },
    Case {
        name: "red_flag_typed_mid_muscle_check_emergency_en",
        lang: "en",
        inputs: &["#hip", "#muscle", "#during", "and my groin has gone numb"],
        urgency: Urgency::Emergency,
    },
    Case {
        name: "hip_bone_restart_urgent_es",
        lang: "es",
        inputs: &[
            "#hip", "#joint", "restart", "#hip", "#bone", "no", "no", "#no", "no", "#new", "#none",
        ],
        urgency: Urgency::Urgent,
    },
];

#[test]
fn golden_transcripts() {
    let mut levels = BTreeSet::new();
    let mut sources = BTreeSet::new();
    for case in CASES {
        let (text, urgency, cited) = play(case.lang, case.inputs);
        assert_eq!(urgency, case.urgency, "{}", case.name);
        levels.insert(urgency);
        sources.extend(cited);
        insta::assert_snapshot!(case.name, text);
    }
    assert_eq!(levels.len(), 4, "every urgency level is covered");
    let all: BTreeSet<String> = dialogues()
        .sources()
        .iter()
        .map(|s| s.title.clone())
        .collect();
    assert_eq!(sources, all, "every article is cited by some transcript");
}
