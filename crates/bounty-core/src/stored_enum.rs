//! Kinds and statuses stored by name: one macro gives each its list of
//! values, its stored name, `Display` and a `FromStr` whose error names the
//! names it expected. So the string form of a kind lives in one place, the
//! enum's declaration, and a row holding an unknown name is an error that
//! says what it should have been.

use std::fmt;

/// A name that is none of a kind's stored names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BadName {
    /// What kind of name it should have been (`account status`).
    pub what: &'static str,
    /// The name given, cut to 32 characters.
    pub got: String,
    /// The names it could have been.
    pub expected: &'static [&'static str],
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {}: expected ", self.got, self.what)?;
        for (i, name) in self.expected.iter().enumerate() {
            let sep = match i {
                0 => "",
                i if i + 1 == self.expected.len() => " or ",
                _ => ", ",
            };
            write!(f, "{sep}`{name}`")?;
        }
        Ok(())
    }
}

impl BadName {
    /// The error for `got`, which is not a `what`.
    pub fn new(what: &'static str, got: &str, expected: &'static [&'static str]) -> Self {
        BadName {
            what,
            got: got.chars().take(32).collect(),
            expected,
        }
    }
}

/// Declares a fieldless enum stored by name:
///
/// ```
/// bounty_core::stored_enum! {
///     /// Where a thing stands.
///     pub enum Light("light") {
///         /// Go.
///         Green = "green",
///         /// Stop.
///         Red = "red",
///     }
/// }
/// assert_eq!("red".parse::<Light>().unwrap(), Light::Red);
/// assert_eq!(Light::Green.to_string(), "green");
/// assert_eq!(
///     "blue".parse::<Light>().unwrap_err().to_string(),
///     "`blue` is not a light: expected `green` or `red`"
/// );
/// ```
#[macro_export]
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $stored:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $stored),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::stored_enum::BadName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::stored_enum::BadName::new($what, s, &[$($stored),+]))
            }
        }
    };
}
