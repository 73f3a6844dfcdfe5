//! What every page's frame needs: the title, the asset URLs, and, when
//! someone is logged in, the navigation with their email and the logout
//! form's CSRF token.

use askama::Template;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::assets;
use crate::auth::{CurrentOperator, CurrentUser};
use crate::error::WebError;

/// The signed-in part of the frame.
pub(crate) struct ChromeUser {
    /// An operator in the console: the console's navigation, no mode
    /// switch, and `/ops/logout`.
    pub(crate) operator: bool,
    /// Showing test-mode data: the banner is up and the switch offers live.
    pub(crate) test_mode: bool,
    pub(crate) email: String,
    pub(crate) role: &'static str,
    pub(crate) csrf: String,
    /// Unread notices: the bell's number.
    pub(crate) unread: i64,
}

/// The frame of a page (`base.html`).
pub(crate) struct Chrome {
    pub(crate) title: String,
    /// Which navigation entry is current (`overview`, `tasks`, …).
    pub(crate) active: &'static str,
    pub(crate) css_href: &'static str,
    pub(crate) js_href: &'static str,
    pub(crate) user: Option<ChromeUser>,
}

impl Chrome {
    /// The frame of a page for a logged-in user.
    pub(crate) fn for_user(user: &CurrentUser, title: impl Into<String>, active: &'static str) -> Chrome {
        Chrome::signed_in(
            title,
            active,
            ChromeUser {
                operator: false,
                test_mode: !user.mode().livemode(),
                email: user.session.email.as_str().to_owned(),
                role: user.session.role.as_str(),
                csrf: user.session.csrf_secret.clone(),
                unread: user.unread,
            },
        )
    }

    /// The frame of an operator console page.
    pub(crate) fn for_operator(
        op: &CurrentOperator,
        title: impl Into<String>,
        active: &'static str,
    ) -> Chrome {
        Chrome::signed_in(
            title,
            active,
            ChromeUser {
                operator: true,
                test_mode: false,
                email: op.session.email.as_str().to_owned(),
                role: "operator",
                csrf: op.session.csrf_secret.clone(),
                unread: op.unread,
            },
        )
    }

    fn signed_in(title: impl Into<String>, active: &'static str, user: ChromeUser) -> Chrome {
        Chrome {
            user: Some(user),
            active,
            ..Chrome::bare(title)
        }
    }

    /// The frame of a page nobody is logged in to (login, errors).
    pub(crate) fn bare(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            active: "",
            css_href: assets::css_href(),
            js_href: assets::js_href(),
            user: None,
        }
    }
}

/// Renders a page as `text/html`.
pub(crate) fn render(page: &impl Template) -> Result<Response, WebError> {
    let html = page.render()?;
    let mut r = html.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(r)
}
