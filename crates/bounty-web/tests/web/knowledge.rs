//! The knowledge page: an owner adds an upload source by pasting a
//! document (a wrong field is named beside it, 422), sees its document and
//! chunk counts, searches and gets the top chunks with their source links,
//! and deletes it; a viewer sees all of it with no action form and is
//! refused a forged POST; another account's source is a 404.

use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, TestApp};

const DOC: &str =
    "# Refunds\n\nRefunds are issued within 30 days.\n\n## By mail\n\nPrint the return label.\n";

async fn an_owner_adds_searches_and_deletes_a_source(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    ann.get("/knowledge")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("href=\"/knowledge\" aria-current=\"page\"")
        .assert_contains("No knowledge sources yet.")
        .assert_contains("<label for=\"content\">Content</label>");

    let csrf = ann.csrf().await;
    ann.post(
        "/knowledge",
        &[
            ("csrf", &csrf),
            ("name", "Help center"),
            ("document_name", "refunds#1.md"),
            ("format", "markdown"),
            ("content", DOC),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("The source was not created.")
    .assert_contains("id=\"document_name-error\">Document name: must not contain")
    .assert_contains("Print the return label.");
    ann.post(
        "/knowledge",
        &[
            ("csrf", &csrf),
            ("name", ""),
            ("document_name", "a.md"),
            ("format", "pdf"),
            ("content", ""),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("id=\"name-error\">Source name: must not be empty")
    .assert_contains("id=\"format-error\">Format: `pdf` is not a document format");

    let created = ann
        .post(
            "/knowledge",
            &[
                ("csrf", &csrf),
                ("name", "Help center"),
                ("document_name", "refunds.md"),
                ("format", "markdown"),
                ("content", DOC),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let source = app
        .store
        .list_knowledge_sources(
            t.account,
            bounty_core::ApiKeyMode::Live,
            bounty_core::PageLimit::DEFAULT,
            None,
        )
        .await
        .unwrap()
        .items
        .remove(0);
    let list = ann.get("/knowledge").await;
    list.assert_status(StatusCode::OK)
        .assert_contains(&format!("data-source-id=\"{}\"", source.id))
        .assert_contains("<td data-label=\"Documents\" class=\"num\">1</td>")
        .assert_contains("<td data-label=\"Chunks\" class=\"num\">2</td>");

    ann.get("/knowledge?q=return+label")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("<code class=\"url\">refunds.md#by-mail</code>")
        .assert_contains("Refunds › By mail")
        .assert_contains("<p>Print the return label.</p>")
        .assert_contains("found by keyword");
    ann.get("/knowledge?q=%22NEAR*")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("No chunk matches.");
    ann.get("/knowledge?q=%22*-")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("The search has no word to search for.");

    // Another account's owner cannot delete it.
    let other = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, other.account, "oz@globex.test", UserRole::Owner).await;
    let mut oz = app.logged_in("oz@globex.test", PASSWORD).await;
    oz.get("/knowledge").await.assert_lacks(&source.id.to_string());
    let oz_csrf = oz.csrf().await;
    oz.post(&format!("/knowledge/{}/delete", source.id), &[("csrf", &oz_csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let deleted = ann
        .post(&format!("/knowledge/{}/delete", source.id), &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    ann.get("/knowledge")
        .await
        .assert_contains("No knowledge sources yet.");
    assert!(
        app.store
            .get_knowledge_source(t.account, source.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_viewer_sees_sources_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "vic@acme.test", UserRole::Viewer).await;
    let (source, _) = bounty_agents::knowledge::create_upload_source(
        &app.store,
        t.account,
        bounty_core::ApiKeyMode::Live,
        &bounty_core::KnowledgeName::parse("Help center").unwrap(),
        &[bounty_core::knowledge::DocumentInput {
            name: "refunds.md",
            format: bounty_core::knowledge::DocumentFormat::Markdown,
            content: DOC,
        }],
    )
    .await
    .unwrap();
    let mut vic = app.logged_in("vic@acme.test", PASSWORD).await;
    let page = vic.get("/knowledge?q=refunds").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("Help center")
        .assert_contains("<code class=\"url\">refunds.md#refunds</code>")
        .assert_contains("Only an owner of this account can add or delete sources.");
    assert_eq!(page.body.matches("method=\"post\"").count(), 2, "{}", page.body);
    let csrf = vic.csrf().await;
    vic.post(&format!("/knowledge/{}/delete", source.id), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert!(
        app.store
            .get_knowledge_source(t.account, source.id)
            .await
            .unwrap()
            .is_some()
    );
}

/// Pages by URL: a bad line is named (422), a good list is answered at
/// once and fetched in the background, and a page that cannot be fetched
/// (here: a loopback address, refused by default) is listed with why.
async fn an_owner_adds_pages_by_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    ann.get("/knowledge")
        .await
        .assert_contains("<label for=\"urls\">Page URLs</label>");
    let csrf = ann.csrf().await;
    ann.post(
        "/knowledge/urls",
        &[
            ("csrf", &csrf),
            ("url_name", "Site"),
            ("urls", "https://example.com/a\nftp://example.com/b\n"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains(
        "id=\"urls-error\">Page URLs: `ftp://example.com/b` must be an absolute http or https URL",
    )
    .assert_contains("ftp://example.com/b\n</textarea>");
    let created = ann
        .post(
            "/knowledge/urls",
            &[
                ("csrf", &csrf),
                ("url_name", "Site"),
                ("urls", "http://127.0.0.1:9/help\n\n"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = ann.get("/knowledge").await;
        if page.body.contains("1 page not indexed") {
            page.assert_contains("<td data-label=\"Status\">Ready</td>")
                .assert_contains("1 page URLs")
                .assert_contains("may not be reached");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

on_both_backends!(
    an_owner_adds_searches_and_deletes_a_source,
    a_viewer_sees_sources_and_changes_nothing,
    an_owner_adds_pages_by_url,
);
