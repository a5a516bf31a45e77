//! The dialogue content: its file format ([`schema`]), loading and compiling ([`load()`]),
//! whole-graph validation ([`validate`]) and the compiled form the engine runs ([`model`]).

pub mod diagnostic;
pub mod load;
pub mod model;
pub mod schema;
pub mod validate;

pub use diagnostic::{Diagnostic, LoadError};
pub use load::{Files, load, load_files, read_files};
pub use model::{Dialogues, Lang, Text};
