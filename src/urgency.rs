//! The four urgency levels, ordered from least to most urgent.

use serde::{Deserialize, Serialize};

/// How soon the person should get help. The order is meaningful: `max` of two levels is the
/// more urgent one, and the engine only ever raises a check's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Likely ordinary soreness: look after it at home.
    SelfCare,
    /// Book a doctor or physiotherapist if not better within a few days to a week.
    SeeProfessional,
    /// See a doctor within 24 to 48 hours.
    Urgent,
    /// Go to an emergency department or call emergency services now.
    Emergency,
}

impl Urgency {
    pub const ALL: [Urgency; 4] = [
        Urgency::SelfCare,
        Urgency::SeeProfessional,
        Urgency::Urgent,
        Urgency::Emergency,
    ];

    /// The id used in dialogue files and in the JSON protocol.
    pub fn id(self) -> &'static str {
        match self {
            Urgency::SelfCare => "self_care",
            Urgency::SeeProfessional => "see_professional",
            Urgency::Urgent => "urgent",
            Urgency::Emergency => "emergency",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Urgency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_from_self_care_to_emergency() {
        assert!(Urgency::SelfCare < Urgency::SeeProfessional);
        assert!(Urgency::SeeProfessional < Urgency::Urgent);
        assert!(Urgency::Urgent < Urgency::Emergency);
        for (i, u) in Urgency::ALL.iter().enumerate() {
            assert_eq!(u.index(), i);
        }
    }
}
