//! Every item of the content checklist (../shared/notes/content-checklist.md) is said
//! somewhere in the dialogues, in English and in Spanish, and no sentence is copied from the
//! articles.

mod common;

use common::dialogues;

/// (checklist item, words that must all appear in the English text, same for Spanish).
const ITEMS: &[(&str, &[&str], &[&str])] = &[
    ("DOMS timing 12-72 h", &["12 to 72"], &["12 y 72"]),
    (
        "DOMS is dull and diffuse",
        &["dull", "spread over"],
        &["sorda", "repartid"],
    ),
    (
        "DOMS eases with light movement",
        &["light movement"],
        &["movimiento suave"],
    ),
    (
        "mild soreness gone in about two days",
        &["about two"],
        &["unos dos"],
    ),
    (
        "back soreness up to three days is normal",
        &["three days"],
        &["tres días"],
    ),
    (
        "injury: sharp, localized, sudden, worse with movement",
        &["sharp", "fingertip", "suddenly", "worse when you move"],
        &["agudo", "yema", "de golpe", "empeora al moverte"],
    ),
    (
        "bone pain: deep, pinpoint, worse when pressed",
        &["bone", "pressed"],
        &["hueso", "presion"],
    ),
    ("Wolff's law: bone remodels to load", &["wolff"], &["wolff"]),
    (
        "stress reaction can progress to stress fracture",
        &["oedema", "hairline"],
        &["edema", "fisura"],
    ),
    (
        "common sites",
        &["tibia", "metatarsal", "femoral neck"],
        &["tibia", "metatarsian", "cuello del fémur"],
    ),
    (
        "sacral stress fracture in runners",
        &["sacrum", "runners"],
        &["sacro", "corredores"],
    ),
    (
        "risk: sudden training increase",
        &["sudden rise"],
        &["aumento brusco"],
    ),
    (
        "risk: low vitamin D or calcium",
        &["vitamin d", "calcium"],
        &["vitamina d", "calcio"],
    ),
    (
        "shin splints along the inner tibia",
        &["shin splints", "inner edge"],
        &["periostitis", "borde interno"],
    ),
    (
        "bone warning: rest or night pain",
        &["at night", "at rest"],
        &["por la noche", "en reposo"],
    ),
    (
        "bone warning: cannot bear weight",
        &["bear weight"],
        &["apoyar"],
    ),
    ("bone warning: hot spot", &["hot spot"], &["punto"]),
    (
        "bone warning: swelling or bruising",
        &["swelling", "bruising"],
        &["hinchazón", "moratón"],
    ),
    (
        "bone: modify activity, professional after a few days",
        &["a few days"],
        &["unos días"],
    ),
    (
        "back cause: strain and sprain",
        &["strain", "sprain"],
        &["distensión", "esguince"],
    ),
    (
        "back cause: rounded back in deadlifts/squats",
        &["rounded"],
        &["redondeada"],
    ),
    (
        "back cause: too heavy / too many reps",
        &["too heavy"],
        &["demasiado peso"],
    ),
    (
        "back cause: maxing out with a weak core",
        &["core"],
        &["core"],
    ),
    (
        "back cause: overtraining, skipping rest cycles",
        &["overtraining", "rest days"],
        &["sobreentrenamiento", "descanso"],
    ),
    (
        "back cause: returning after a break without easing in",
        &["break", "holiday"],
        &["parón", "vacaciones"],
    ),
    (
        "back cause: tight iliopsoas or hamstrings",
        &["hamstrings", "hip flexors"],
        &["isquiotibiales", "flexores de cadera"],
    ),
    ("back cause: no warm-up", &["warm up"], &["calienta"]),
    ("back cause: distraction", &["mind on"], &["concéntr"]),
    (
        "back cause: depression, anxiety, medication, age, weight",
        &["depression", "anxiety", "medicines", "age", "weight"],
        &["depresión", "ansiedad", "medicamentos", "edad", "peso"],
    ),
    (
        "spinal conditions need tests",
        &["discs", "arthritis", "scoliosis", "tests"],
        &["discos", "artrosis", "escoliosis", "pruebas"],
    ),
    (
        "nerve signs: below the knee, tingling, sciatica, weakness",
        &["below the knee", "tingling", "sciatica", "weakness"],
        &["debajo de la rodilla", "hormigueo", "ciática", "debilidad"],
    ),
    (
        "cauda equina red flags",
        &[
            "bladder",
            "bowel",
            "groin",
            "saddle",
            "cauda equina",
            "even once",
        ],
        &[
            "vejiga",
            "intestino",
            "ingle",
            "silla de montar",
            "cola de caballo",
            "una vez",
        ],
    ),
    (
        "severe pain not helped by rest or painkillers",
        &["painkillers"],
        &["analgésicos"],
    ),
    (
        "pain restricting range of motion",
        &["range"],
        &["recorrido"],
    ),
    ("muscle contractures", &["contracture"], &["contractura"]),
    (
        "worse or persisting despite self-care",
        &["despite"],
        &["a pesar"],
    ),
    ("lasting longer than about a week", &["week"], &["semana"]),
    (
        "joint pain is not a normal training response",
        &["not the usual", "joint"],
        &["no es la respuesta habitual"],
    ),
    (
        "joint causes: stress, inflammation, overuse, conditions",
        &[
            "inflammation",
            "overuse",
            "running",
            "cycling",
            "arthritis",
            "earlier injury",
        ],
        &[
            "inflamación",
            "sobreuso",
            "correr",
            "artrosis",
            "lesión anterior",
        ],
    ),
    (
        "joint: rest, ice, adjust routine, professional",
        &["ice", "adjust", "health professional"],
        &["hielo", "ajusta", "profesional"],
    ),
    (
        "self-care: rest 24-48 h without immobility, walking",
        &["24 to 48", "walking"],
        &["24 a 48", "caminar"],
    ),
    (
        "self-care: cold first, heat later",
        &["cold", "heat"],
        &["frío", "calor"],
    ),
    (
        "self-care: NSAIDs following the label",
        &["nsaid", "label"],
        &["aine", "envase"],
    ),
    (
        "self-care: hydration, protein/carbs/fats, sleep",
        &["water", "protein", "carbohydrates", "fats", "sleep"],
        &["agua", "proteínas", "hidratos", "grasas", "duerme"],
    ),
    (
        "keep moving at a slower pace; 30-40 min walking",
        &["30 to 40"],
        &["30 a 40"],
    ),
    (
        "prevention: warm-up with cardio and dynamic stretches, cool-down static",
        &["dynamic", "static", "cool down"],
        &["dinámicos", "estáticos", "vuelta a la calma"],
    ),
    (
        "prevention: neutral spine, qualified coach",
        &["neutral", "qualified coach"],
        &["neutra", "entrenador cualificado"],
    ),
    (
        "prevention: progressive overload",
        &["gradually"],
        &["poco a poco"],
    ),
    (
        "prevention: listen to fatigue and plateaus",
        &["listen to your body", "stalls"],
        &["escucha a tu cuerpo", "estanca"],
    ),
];

fn all_text(lang: &str) -> String {
    let d = dialogues();
    let lang = d.lang(lang).unwrap();
    d.all_texts()
        .iter()
        .map(|t| t.get(lang).to_lowercase())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_checklist_item_is_said_in_both_languages() {
    let en = all_text("en");
    let es = all_text("es");
    let mut missing = Vec::new();
    for (item, en_words, es_words) in ITEMS {
        for w in *en_words {
            if !en.contains(w) {
                missing.push(format!("{item}: en lacks {w:?}"));
            }
        }
        for w in *es_words {
            if !es.contains(w) {
                missing.push(format!("{item}: es lacks {w:?}"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The articles are sources, not text to copy: no run of nine words is shared with them.
#[test]
fn no_sentence_is_copied_from_the_articles() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    let Ok(entries) = std::fs::read_dir(&seeds) else {
        eprintln!("skipped: {} is not here", seeds.display());
        return;
    };
    let words = |t: &str| -> Vec<String> {
        t.to_lowercase()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut grams = std::collections::HashSet::new();
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let w = words(&text);
        for g in w.windows(9) {
            grams.insert(g.to_vec());
        }
    }
    let ours = words(&all_text("en"));
    let copied: Vec<String> = ours
        .windows(9)
        .filter(|g| grams.contains(*g))
        .map(|g| g.join(" "))
        .collect();
    assert!(copied.is_empty(), "copied from the articles: {copied:#?}");
}
