//! The normalised outcomes and session statuses, enums end to end.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The one normalised result every session ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Declined,
    Review,
    Failed,
    Canceled,
    Expired,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Approved,
        Outcome::Declined,
        Outcome::Review,
        Outcome::Failed,
        Outcome::Canceled,
        Outcome::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Declined => "declined",
            Outcome::Review => "review",
            Outcome::Failed => "failed",
            Outcome::Canceled => "canceled",
            Outcome::Expired => "expired",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!("unknown outcome `{s}`; expected one of approved, declined, review, failed, canceled, expired")
            })
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Doing work: a provider call is in flight or about to be.
    Running,
    /// Parked in a `wait` step until an event or its deadline.
    Waiting,
    /// Finished with an outcome; nothing will change it again.
    Ended,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Waiting => "waiting",
            SessionStatus::Ended => "ended",
        }
    }
}

impl FromStr for SessionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(SessionStatus::Running),
            "waiting" => Ok(SessionStatus::Waiting),
            "ended" => Ok(SessionStatus::Ended),
            other => Err(format!(
                "unknown status `{other}`; expected running, waiting or ended"
            )),
        }
    }
}
