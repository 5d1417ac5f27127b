//! Rust enums for the text columns a CHECK constraint limits to a few values. Each maps to
//! `diesel::sql_types::Text` (written with [`as_str`](TurnRole::as_str), read with
//! [`FromStr`]), so a value outside the list cannot be built in Rust, and one read from the
//! database is a [`UnknownValue`] error naming the value and the column, never a panic.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;

/// A text value that is not one of an enum's values: from [`FromStr`], or read from the
/// database (then it is the deserialization error diesel returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unexpected value {value:?} for {type_name} (column {column}, type text): expected one of {}",
    expected.join(", ")
)]
pub struct UnknownValue {
    /// The Rust type, e.g. `TurnRole`.
    pub type_name: &'static str,
    /// The column the type maps, e.g. `aura.turns.role`.
    pub column: &'static str,
    /// The value that did not match.
    pub value: String,
    /// The values the type knows.
    pub expected: &'static [&'static str],
}

macro_rules! text_enum {
    (
        $(#[$doc:meta])*
        $name:ident, column = $column:literal,
        { $( $(#[$vdoc:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in the order of the CHECK constraint.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The strings the column accepts, in the order of [`Self::ALL`].
            pub const STRS: &'static [&'static str] = &[$($text),+];

            /// The column this type maps, schema-qualified.
            pub const COLUMN: &'static str = $column;

            /// The text stored in the column.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(UnknownValue {
                        type_name: stringify!($name),
                        column: $column,
                        value: other.to_owned(),
                        expected: Self::STRS,
                    }),
                }
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let text = std::str::from_utf8(bytes.as_bytes())?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

text_enum!(
    /// Who spoke a turn (`turns.role`).
    TurnRole, column = "aura.turns.role",
    {
        /// The person using Aura.
        User => "user",
        /// The model's reply.
        Assistant => "assistant",
        /// Instructions set by the application.
        System => "system",
        /// The output of a tool call.
        Tool => "tool",
    }
);

text_enum!(
    /// Where a run is (`runs.status`); at most one run per conversation is `Running`.
    RunStatus, column = "aura.runs.status",
    {
        /// Executing now.
        Running => "running",
        /// Ended on request.
        Stopped => "stopped",
        /// Ended normally.
        Completed => "completed",
        /// Ended with an error.
        Failed => "failed",
    }
);

text_enum!(
    /// Where an ask-user request is (`ask_user_requests.status`).
    RequestStatus, column = "aura.ask_user_requests.status",
    {
        /// Waiting for the user.
        Pending => "pending",
        /// The user answered; the run has not picked the answer up yet.
        Answered => "answered",
        /// The run went on with the answer.
        Resumed => "resumed",
        /// Withdrawn without an answer.
        Cancelled => "cancelled",
    }
);

impl RunStatus {
    /// True for every status but `Running`.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Running)
    }
}

impl RequestStatus {
    /// True when the row must carry an answer (the CHECK constraint's rule).
    pub const fn has_answer(self) -> bool {
        matches!(self, RequestStatus::Answered | RequestStatus::Resumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text() {
        for v in TurnRole::ALL {
            assert_eq!(v.as_str().parse::<TurnRole>().ok(), Some(*v));
        }
        for v in RunStatus::ALL {
            assert_eq!(v.as_str().parse::<RunStatus>().ok(), Some(*v));
        }
        for v in RequestStatus::ALL {
            assert_eq!(v.as_str().parse::<RequestStatus>().ok(), Some(*v));
        }
        assert_eq!(TurnRole::STRS, ["user", "assistant", "system", "tool"]);
    }

    #[test]
    fn an_unknown_value_names_itself_and_the_column() {
        let err = "Assistant".parse::<TurnRole>().expect_err("case matters");
        assert_eq!(
            err.to_string(),
            "unexpected value \"Assistant\" for TurnRole (column aura.turns.role, type text): \
             expected one of user, assistant, system, tool"
        );
    }
}
