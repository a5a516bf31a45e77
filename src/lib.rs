//! gymtriage: a post-workout pain triage assistant.
//!
//! The crate is a pure engine with thin shells: [`dialogue`] loads and validates the clinical
//! content in `dialogues/`, [`engine`] runs a check over it, and [`front`] holds the terminal
//! and JSON-lines front ends. See ARCHITECTURE.md for the map.

pub mod bot;
pub mod dialogue;
pub mod engine;
pub mod front;
pub mod graph;
pub mod text;
pub mod urgency;

pub use dialogue::{Dialogues, Lang, LoadError, load};
pub use engine::{Ask, Input, InputError, Outcome, Session, Step};
pub use urgency::Urgency;
