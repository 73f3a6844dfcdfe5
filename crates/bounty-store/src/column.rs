//! Store-side wrappers that let rows decode straight into core's typed
//! values. Core knows nothing of sqlx, and the orphan rule forbids
//! implementing sqlx's traits for its types here, so a row names its
//! column `Text<AgentId>` or `Json<VerificationPolicy>` and the decode
//! parses it; a stored value that does not parse is a decode error naming
//! the value, which the store reports as [`StoreError::Corrupt`].
//!
//! Arguments go the other way through `tx::Arg`'s `From` impls, which
//! write the same string forms.
//!
//! [`StoreError::Corrupt`]: crate::StoreError::Corrupt

use std::fmt::Display;
use std::str::FromStr;

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// Both wrappers are text columns to the database.
macro_rules! text_column {
    ($($wrapper:ident),+) => {$(
        impl<T, DB: Database> Type<DB> for $wrapper<T>
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }
    )+};
}

text_column!(Text, Json);

/// A text column read through `T::from_str`: ids, stored kinds and
/// statuses, currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Text<T>(pub(crate) T);

impl<T> Text<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<'r, T, DB: Database> Decode<'r, DB> for Text<T>
where
    &'r str: Decode<'r, DB>,
    T: FromStr,
    T::Err: Display,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&'r str as Decode<'r, DB>>::decode(value)?;
        s.parse()
            .map(Text)
            .map_err(|e: T::Err| format!("{s:?} does not parse: {e}").into())
    }
}

/// A JSON text column read through serde: policies, plans, verdicts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T> Json<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<'r, T, DB: Database> Decode<'r, DB> for Json<T>
where
    &'r str: Decode<'r, DB>,
    T: serde::de::DeserializeOwned,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&'r str as Decode<'r, DB>>::decode(value)?;
        serde_json::from_str(s)
            .map(Json)
            .map_err(|e| format!("stored JSON does not read: {e}").into())
    }
}
