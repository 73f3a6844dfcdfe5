//! The verifier policy in the agent form, and the policy's history and
//! diff (`/agents/{id}/policy`): an edit adds a version the history lists
//! and the diff shows; every wrong field is named by its row; a policy
//! opened and saved unchanged stays exactly as it was; another account's
//! history is a 404.

use bounty_core::verification::JudgeSpec;
use bounty_core::{VerificationPolicy, VerifierSpec};
use bounty_store::{Agent, AgentPatch, UserRole};
use reqwest::StatusCode;

use crate::agents::{app, set};
use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, TestApp};

/// HTML text back to what it stands for: askama's character references
/// (`&#60;`, `&#38;`, …) and the named ones.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').expect("a reference ends");
        let name = &rest[1..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            _ => name
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32)
                .unwrap_or_else(|| panic!("an unknown reference &{name};")),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of attribute `name` in a tag's text, if present.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

/// What a browser would post for the form whose action is `action`, left
/// as the page shows it: every named input (checkboxes only when
/// checked), each select's selected option (else its first), and each
/// textarea's text (less the one newline an HTML parser drops after the
/// opening tag), in page order.
fn form_as_shown(body: &str, action: &str) -> Vec<(String, String)> {
    let start = body
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let form = &body[start..start + body[start..].find("</form>").expect("the form ends")];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        let end = rest.find('>').expect("a tag ends");
        let tag = &rest[..end];
        if tag.starts_with("<input") {
            let name = attr(tag, "name");
            let checkbox = attr(tag, "type").as_deref() == Some("checkbox");
            if let Some(name) = name
                && (!checkbox || tag.contains(" checked"))
            {
                out.push((name, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<select") {
            let close = rest.find("</select>").expect("the select ends");
            let options: Vec<&str> = rest[..close].split("<option").skip(1).collect();
            let chosen = options
                .iter()
                .find(|o| o.contains(" selected>"))
                .or(options.first())
                .expect("an option");
            out.push((
                attr(tag, "name").expect("a name"),
                attr(chosen, "value").unwrap_or_default(),
            ));
        } else if tag.starts_with("<textarea") {
            let close = rest.find("</textarea>").expect("the textarea ends");
            let text = &rest[end + 1..close];
            let text = text.strip_prefix('\n').unwrap_or(text);
            out.push((attr(tag, "name").expect("a name"), unescape(text)));
        }
        rest = &rest[end..];
    }
    out
}

async fn post_owned(b: &mut Browser, path: &str, form: &[(String, String)]) -> crate::support::Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(path, &pairs).await
}

/// Opens the agent page at `path`, changes `edits` in its form as shown
/// (each field must be there), and saves it: a redirect.
async fn save_form(b: &mut Browser, path: &str, edits: &[(&str, &str)]) {
    let page = b.get(path).await;
    page.assert_status(StatusCode::OK);
    let mut form = form_as_shown(&page.body, path);
    for (field, value) in edits {
        form.iter_mut()
            .find(|(k, _)| k == field)
            .unwrap_or_else(|| panic!("no field {field}"))
            .1 = (*value).to_owned();
    }
    post_owned(b, path, &form)
        .await
        .assert_status(StatusCode::SEE_OTHER);
}

/// The tenant's agent at its current version.
async fn current(app: &TestApp, t: &seed::Tenant) -> Agent {
    app.store
        .get_agent(t.account, t.agent, None)
        .await
        .unwrap()
        .expect("the agent")
}

async fn editing_the_policy_adds_a_version_the_history_and_diff_show(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    let path = format!("/agents/{}", t.agent);
    let page = b.get(&path).await;
    page.assert_status(StatusCode::OK)
        .assert_contains("<li>Verifier 1: the reply must not be empty</li>")
        .assert_contains(&format!("href=\"/agents/{}/policy\"", t.agent))
        .assert_contains("<legend>Verifier 2</legend>");
    // Change the window and add a judge in the empty row.
    save_form(
        &mut b,
        &path,
        &[
            ("window_hours", "48"),
            ("verifiers[1].kind", "judge"),
            ("verifiers[1].model", "large"),
            ("verifiers[1].rubric", "Was the customer's question answered?"),
            ("verifiers[1].threshold", "0.7"),
        ],
    )
    .await;
    let v2 = current(&app, &t).await;
    assert_eq!(v2.version, 2);
    assert_eq!(v2.verifier_policy.window_hours, 48);
    assert_eq!(
        v2.verifier_policy.verifiers[1],
        VerifierSpec::Judge(JudgeSpec {
            model: "large".into(),
            rubric: "Was the customer's question answered?".into(),
            threshold: 0.7,
        })
    );

    // The diff, by default the version before against the current one.
    let history = b.get(&format!("{path}/policy")).await;
    history
        .assert_status(StatusCode::OK)
        .assert_contains("Changes from version 1 to version 2")
        .assert_contains("<del>Window: 24 hours</del>")
        .assert_contains("<ins>Window: 48 hours</ins>")
        .assert_contains(
            "<ins>Verifier 2: judge with model large, threshold 0.7 — rubric: “Was the customer&#39;s question \
             answered?”</ins>",
        )
        .assert_contains("<span class=\"visually-hidden\">added: </span>")
        .assert_contains("<span class=\"visually-hidden\">unchanged: </span>Mode: every verifier must pass")
        .assert_contains("data-version=\"2\"")
        .assert_contains("data-version=\"1\"")
        .assert_contains(&format!("href=\"/agents/{}/policy?from=1&#38;to=2\"", t.agent));

    // An edit that leaves the policy alone is a version, not a policy change.
    save_form(&mut b, &path, &[("instructions", "Be brief.")]).await;
    let v3 = current(&app, &t).await;
    assert_eq!((v3.version, &v3.verifier_policy), (3, &v2.verifier_policy));
    b.get(&format!("{path}/policy"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Changes from version 2 to version 3")
        .assert_contains("The policy is the same in both versions.")
        .assert_lacks("data-version=\"3\"")
        .assert_contains("1 other version here changed other settings only.");
    b.get(&format!("{path}/policy?from=3&to=1"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("<del>Window: 48 hours</del>")
        .assert_contains("<ins>Window: 24 hours</ins>");
}

async fn a_policy_saved_unchanged_stays_exactly_as_it_was(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    // Set through the store, as the API would: several judges and every
    // rules field, with text a line cannot carry (the fixture the form's
    // unit tests share).
    let policy: VerificationPolicy =
        serde_json::from_str(include_str!("../fixtures/rich_policy.json")).expect("the fixture");
    app.store
        .update_agent(
            t.account,
            t.agent,
            &AgentPatch {
                verifier_policy: Some(policy.clone()),
                ..AgentPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let path = format!("/agents/{}", t.agent);
    save_form(&mut b, &path, &[]).await;
    let saved = current(&app, &t).await;
    assert_eq!(saved.version, 3);
    assert_eq!(saved.verifier_policy, policy);
    b.get(&format!("{path}/policy"))
        .await
        .assert_contains("The policy is the same in both versions.");
}

async fn every_wrong_policy_field_is_named_by_its_row(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    let path = format!("/agents/{}", t.agent);
    let csrf = b.csrf().await;
    let mut f = vec![
        ("csrf", csrf.as_str()),
        ("name", "support"),
        ("instructions", "Answer."),
        ("model_route", "small"),
        ("mode", "all_of"),
        ("lapse_decision", "pass"),
        ("csat_threshold", "4"),
        ("goodwill_days", "0"),
    ];
    set(&mut f, "verifiers[0].kind", "rules");
    set(&mut f, "verifiers[0].must_match", "fine\r\n(unclosed");
    set(&mut f, "verifiers[1].kind", "judge");
    set(&mut f, "verifiers[1].model", "small");
    set(&mut f, "verifiers[1].rubric", " ");
    set(&mut f, "verifiers[1].threshold", "2");
    set(&mut f, "verifiers[2].kind", "judge");
    set(&mut f, "verifiers[2].model", "large");
    set(&mut f, "verifiers[2].rubric", "ok?");
    set(&mut f, "verifiers[2].threshold", "high");
    set(&mut f, "window_hours", "soon");
    set(&mut f, "csat_threshold", "7");
    let r = b.post(&path, &f).await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("role=\"alert\"")
        .assert_contains(
            "id=\"verifiers[0].must_match-error\">Must match: the entry &#34;(unclosed&#34; is not a usable \
             regular expression",
        )
        .assert_contains("id=\"verifiers[1].rubric-error\">Rubric: must not be empty")
        .assert_contains(
            "id=\"verifiers[1].threshold-error\">Least confidence to pass: must be between 0 and 1",
        )
        .assert_contains(
            "id=\"verifiers[2].threshold-error\">Least confidence to pass: must be a number from 0 to 1",
        )
        .assert_contains("id=\"window_hours-error\">Window (hours): must be a whole number of hours")
        .assert_contains("id=\"csat_threshold-error\">Satisfaction threshold: must be between 1 and 5")
        .assert_contains("<a href=\"#verifiers[1].rubric\">Verifier 2: rubric</a>")
        .assert_contains("<a href=\"#verifiers[2].threshold\">Verifier 3: threshold</a>")
        // What was typed is shown back.
        .assert_contains("value=\"high\"")
        .assert_contains("(unclosed</textarea>");
    // Removing every verifier is refused: nothing is billed unverified.
    let mut none = f.clone();
    for kind in ["verifiers[0].kind", "verifiers[1].kind", "verifiers[2].kind"] {
        set(&mut none, kind, "");
    }
    set(&mut none, "window_hours", "24");
    set(&mut none, "csat_threshold", "4");
    b.post(&path, &none)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("id=\"verifiers-error\">Verifiers: must list at least one verifier")
        .assert_contains("<a href=\"#verifiers\">Verifiers</a>");
    assert_eq!(current(&app, &t).await.version, 1, "nothing was saved");
}

async fn the_history_is_the_accounts_own_and_bad_versions_are_refused(backend: Backend) {
    let (app, a, mut ann) = app(backend).await;
    let b = seed::tenant(&app.store, "Globex").await;
    // Another account's agent: not found, with or without versions named.
    for q in ["", "?from=1&to=1", "?before=2"] {
        ann.get(&format!("/agents/{}/policy{q}", b.agent))
            .await
            .assert_status(StatusCode::NOT_FOUND)
            .assert_lacks("Verifier 1");
    }
    ann.get("/agents/agt_nonsense/policy")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let own = format!("/agents/{}/policy", a.agent);
    ann.get(&format!("{own}?to=9"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    for (q, param) in [
        ("from=abc", "`from`"),
        ("to=0", "`to`"),
        ("before=-2", "`before`"),
    ] {
        ann.get(&format!("{own}?{q}"))
            .await
            .assert_status(StatusCode::BAD_REQUEST)
            .assert_contains(param);
    }
    // A single version compares with itself; a member may read it.
    seed::user(&app.store, a.account, "max@acme.test", UserRole::Member).await;
    let mut max = app.logged_in("max@acme.test", PASSWORD).await;
    max.get(&own)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Changes from version 1 to version 1")
        .assert_contains("The policy is the same in both versions.")
        .assert_contains("First version");
}

on_both_backends!(
    editing_the_policy_adds_a_version_the_history_and_diff_show,
    a_policy_saved_unchanged_stays_exactly_as_it_was,
    every_wrong_policy_field_is_named_by_its_row,
    the_history_is_the_accounts_own_and_bad_versions_are_refused,
);
