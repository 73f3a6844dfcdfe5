//! Knowledge sources on both backends: through the store and the use
//! cases (incremental, idempotent indexing that keeps unchanged chunk ids
//! and their embeddings; changed documents replaced; deletion cascading;
//! keyword ranking and hostile queries; tenant isolation), and through the
//! API (create, list, get, upload, search, delete; 422s naming the field;
//! 404 for another account's source).

use bounty_agents::knowledge::{add_documents, create_upload_source, reindex_source};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, SearchQuery};
use bounty_core::{AccountId, ApiKeyMode, KnowledgeName, KnowledgeSourceId};
use bounty_store::{DocumentChange, Store};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Backend, TestApp, assert_error, json_of};

backend_tests!(
    reindexing_is_incremental_and_keeps_unchanged_chunks,
    deleting_a_source_deletes_its_documents_and_chunks,
    search_ranks_by_relevance_and_takes_any_query_as_words,
    another_account_sees_none_of_it,
    the_api_creates_searches_and_deletes_sources,
    the_api_refuses_bad_input_naming_the_field,
    the_cli_reindexes_only_what_changed,
);

const REFUNDS_V1: &str = "# Refunds\n\nRefunds are issued within 30 days of purchase.\n\n\
## By mail\n\nPrint the return label and post the parcel.\n\n## Exceptions\n\nGift cards are final.\n";
const REFUNDS_V2: &str = "# Refunds\n\nRefunds are issued within 30 days of purchase.\n\n\
## By mail\n\nPrint the return label and post the parcel.\n\n## Exceptions\n\nGift cards and sale items are final.\n";
const SHIPPING: &str = "<html><head><title>Shipping</title><script>var refund = 1;</script></head>\
<body><h1 id=\"times\">Delivery times</h1><p>Parcels arrive in two days.</p></body></html>";

fn doc<'a>(name: &'a str, format: DocumentFormat, content: &'a str) -> DocumentInput<'a> {
    DocumentInput {
        name,
        format,
        content,
    }
}

async fn account(app: &TestApp, name: &str) -> (AccountId, String) {
    app.create_account(name).await
}

async fn help_center(store: &Store, account: AccountId) -> KnowledgeSourceId {
    let (source, report) = create_upload_source(
        store,
        account,
        ApiKeyMode::Live,
        &KnowledgeName::parse("Help center").unwrap(),
        &[
            doc("refunds.md", DocumentFormat::Markdown, REFUNDS_V1),
            doc("shipping.html", DocumentFormat::Html, SHIPPING),
        ],
    )
    .await
    .unwrap();
    assert_eq!((report.added, report.updated, report.unchanged), (2, 0, 0));
    assert_eq!(source.document_count, 2);
    assert_eq!(source.chunk_count, 4);
    source.id
}

/// Asserts `account` finds no chunk of `source`, by words or by embedding.
async fn finds_nothing(store: &Store, account: AccountId, source: KnowledgeSourceId, q: &str) {
    let hits = store
        .search_chunks(account, &[source], &words(q), 10)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let embedded = store.chunks_with_embeddings(account, &[source]).await.unwrap();
    assert!(embedded.is_empty(), "{embedded:?}");
}

fn words(q: &str) -> SearchQuery {
    SearchQuery::parse("q", q).unwrap()
}

async fn reindexing_is_incremental_and_keeps_unchanged_chunks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let (acct, _) = account(&app, "Acme").await;
    let ks = help_center(store, acct).await;
    let before = store
        .search_chunks(acct, &[ks], &words("gift label"), 10)
        .await
        .unwrap();
    assert_eq!(before.len(), 2, "{before:?}");
    let exceptions = before
        .iter()
        .find(|h| h.text.starts_with("Gift"))
        .unwrap()
        .clone();
    let by_mail = before
        .iter()
        .find(|h| h.text.starts_with("Print"))
        .unwrap()
        .clone();
    assert_eq!(by_mail.link, "refunds.md#by-mail");
    assert_eq!(by_mail.heading_path, ["Refunds", "By mail"]);
    assert!(
        store
            .set_chunk_embedding(acct, &by_mail.id, "mini-embed", &[0.5, -1.0])
            .await
            .unwrap()
    );
    let indexed_at = store
        .get_knowledge_source(acct, ks)
        .await
        .unwrap()
        .unwrap()
        .indexed_at;

    // Nothing changed: nothing is written, twice over.
    for _ in 0..2 {
        let mut seen = Vec::new();
        let report = reindex_source(store, acct, ks, |done, total, name| {
            seen.push((done, total, name.to_owned()))
        })
        .await
        .unwrap();
        assert!(!report.changed());
        assert_eq!(report.unchanged, 2);
        assert_eq!(
            seen,
            [
                (1, 2, "refunds.md".to_owned()),
                (2, 2, "shipping.html".to_owned())
            ]
        );
    }
    let source = store.get_knowledge_source(acct, ks).await.unwrap().unwrap();
    assert_eq!(source.indexed_at, indexed_at, "an unchanged run writes nothing");

    // One section edited: only its chunk is replaced; the others keep
    // their ids, and the embedding stays with its chunk.
    let (source, report) = add_documents(
        store,
        acct,
        &source,
        &[doc("refunds.md", DocumentFormat::Markdown, REFUNDS_V2)],
    )
    .await
    .unwrap();
    assert_eq!((report.added, report.updated, report.unchanged), (0, 1, 0));
    assert_eq!((report.chunks_added, report.chunks_removed), (1, 1));
    assert_eq!(source.chunk_count, 4);
    let after = store
        .search_chunks(acct, &[ks], &words("gift label"), 10)
        .await
        .unwrap();
    let ids: Vec<_> = after.iter().map(|h| h.id.clone()).collect();
    assert!(ids.contains(&by_mail.id));
    assert!(!ids.contains(&exceptions.id), "the edited chunk has a new id");
    assert!(
        after
            .iter()
            .any(|h| h.text == "Gift cards and sale items are final.")
    );
    let embedded = store.chunks_with_embeddings(acct, &[ks]).await.unwrap();
    assert_eq!(embedded.len(), 1);
    assert_eq!(embedded[0].id, by_mail.id);
    assert_eq!(embedded[0].embedding, [0.5, -1.0]);
    assert_eq!(embedded[0].model, "mini-embed");

    // The same upload again: unchanged.
    let (_, again) = add_documents(
        store,
        acct,
        &source,
        &[doc("refunds.md", DocumentFormat::Markdown, REFUNDS_V2)],
    )
    .await
    .unwrap();
    assert_eq!((again.unchanged, again.changed()), (1, false));

    // A document no longer present is removed with its chunks.
    let removed = store
        .remove_knowledge_documents_except(acct, ks, &["shipping.html".to_owned()])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let source = store.get_knowledge_source(acct, ks).await.unwrap().unwrap();
    assert_eq!((source.document_count, source.chunk_count), (1, 1));
    finds_nothing(store, acct, ks, "refunds").await;
}

async fn deleting_a_source_deletes_its_documents_and_chunks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let (acct, _) = account(&app, "Acme").await;
    let ks = help_center(store, acct).await;
    let other = help_center(store, acct).await;
    let hit = store
        .search_chunks(acct, &[ks], &words("arrive"), 1)
        .await
        .unwrap()[0]
        .clone();
    assert!(
        store
            .set_chunk_embedding(acct, &hit.id, "m", &[1.0])
            .await
            .unwrap()
    );

    assert!(store.delete_knowledge_source(acct, ks).await.unwrap());
    assert!(
        !store.delete_knowledge_source(acct, ks).await.unwrap(),
        "gone already"
    );
    assert!(store.get_knowledge_source(acct, ks).await.unwrap().is_none());
    assert!(store.knowledge_documents(acct, ks).await.unwrap().is_empty());
    assert!(
        store
            .knowledge_document_contents(acct, ks)
            .await
            .unwrap()
            .is_empty()
    );
    finds_nothing(store, acct, ks, "parcels refunds").await;
    assert!(
        !store
            .set_chunk_embedding(acct, &hit.id, "m", &[1.0])
            .await
            .unwrap(),
        "the chunk row is gone"
    );
    // The other source is untouched, and its index still answers.
    assert_eq!(store.knowledge_documents(acct, other).await.unwrap().len(), 2);
    assert_eq!(
        store
            .search_chunks(acct, &[other], &words("arrive"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn search_ranks_by_relevance_and_takes_any_query_as_words(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let (acct, _) = account(&app, "Acme").await;
    let (source, _) = create_upload_source(
        store,
        acct,
        ApiKeyMode::Live,
        &KnowledgeName::parse("FAQ").unwrap(),
        &[
            doc(
                "a.txt",
                DocumentFormat::Text,
                "Refund refund refund: every refund is sent to the card.",
            ),
            doc(
                "b.txt",
                DocumentFormat::Text,
                "Orders ship in two days. A refund is possible.",
            ),
            doc("c.txt", DocumentFormat::Text, "Our office is closed on Sundays."),
        ],
    )
    .await
    .unwrap();
    let hits = store
        .search_chunks(acct, &[source.id], &words("refunds"), 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "stemmed: `refunds` finds `refund`");
    assert_eq!(hits[0].link, "a.txt");
    assert_eq!(hits[1].link, "b.txt");
    assert!(
        hits[0].score > hits[1].score && hits[1].score > 0.0 && hits[0].score < 1.0,
        "{hits:?}"
    );
    assert_eq!(
        store
            .search_chunks(acct, &[source.id], &words("refunds"), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    for hostile in [
        "\"refund",
        "refund\"",
        "NEAR(refund orders)",
        "refund*",
        "-refund",
        "refund OR",
        "AND refund NOT",
        "col:refund",
        "'; drop table knowledge_chunks; --",
        "refund & | ! <-> :* (",
        "\\ refund \\",
        "ÉCOLE naïve 東京",
    ] {
        let q = SearchQuery::parse("q", hostile).unwrap();
        store
            .search_chunks(acct, &[source.id], &q, 5)
            .await
            .unwrap_or_else(|e| panic!("{hostile:?}: {e}"));
    }
    let hostile = store
        .search_chunks(acct, &[source.id], &words("-refund*"), 5)
        .await
        .unwrap();
    assert_eq!(hostile.len(), 2, "`-` and `*` are not operators");
    assert!(
        store
            .search_chunks(acct, &[source.id], &words("the and of"), 5)
            .await
            .unwrap()
            .len()
            <= 3
    );
    assert!(
        store
            .search_chunks(acct, &[], &words("refund"), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn another_account_sees_none_of_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let (a, _) = account(&app, "Acme").await;
    let (b, _) = account(&app, "Globex").await;
    let ks = help_center(store, a).await;
    let hit = store.search_chunks(a, &[ks], &words("arrive"), 1).await.unwrap()[0].clone();

    assert!(store.get_knowledge_source(b, ks).await.unwrap().is_none());
    assert!(store.knowledge_documents(b, ks).await.unwrap().is_empty());
    assert!(store.knowledge_document_contents(b, ks).await.unwrap().is_empty());
    assert!(store.set_chunk_embedding(a, &hit.id, "m", &[1.0]).await.unwrap());
    finds_nothing(store, b, ks, "parcels refunds").await;
    assert!(!store.set_chunk_embedding(b, &hit.id, "m", &[2.0]).await.unwrap());
    assert_eq!(
        store.chunks_with_embeddings(a, &[ks]).await.unwrap()[0].embedding,
        [1.0]
    );
    let prepared =
        bounty_core::knowledge::prepare(ks, &[doc("evil.md", DocumentFormat::Markdown, "Mine now.")])
            .unwrap();
    assert_eq!(
        store.index_document(b, ks, &prepared[0]).await.unwrap(),
        None::<DocumentChange>
    );
    assert!(
        reindex_source(store, b, ks, |_, _, _| {})
            .await
            .unwrap()
            .unchanged
            == 0
    );
    assert_eq!(
        store.remove_knowledge_documents_except(b, ks, &[]).await.unwrap(),
        0
    );
    assert!(!store.delete_knowledge_source(b, ks).await.unwrap());
    let still = store.get_knowledge_source(a, ks).await.unwrap().unwrap();
    assert_eq!((still.document_count, still.chunk_count), (2, 4));
}

/// Sends `method path` with `key`, and `body` as JSON when given.
pub(crate) async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.request(method, path, Some(key));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

fn upload_body() -> Value {
    json!({
        "name": "Help center",
        "kind": "upload",
        "documents": [
            {"name": "refunds.md", "format": "markdown", "content": REFUNDS_V1},
            {"name": "shipping.html", "format": "html", "content": SHIPPING},
        ],
    })
}

async fn the_api_creates_searches_and_deletes_sources(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = account(&app, "Acme").await;
    let created = json_of(
        send(&app, Method::POST, "/v1/knowledge", &key, Some(upload_body())).await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ks_"));
    assert_eq!(created["kind"], "upload");
    assert_eq!(created["document_count"], 2);
    assert_eq!(created["chunk_count"], 4);
    assert_eq!(created["livemode"], true);
    assert_eq!(created["indexed"]["added"], 2);

    let list = json_of(
        send(&app, Method::GET, "/v1/knowledge?limit=1", &key, None).await,
        200,
    )
    .await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["next_cursor"], Value::Null);

    let got = json_of(
        send(&app, Method::GET, &format!("/v1/knowledge/{id}"), &key, None).await,
        200,
    )
    .await;
    let docs = got["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["name"], "refunds.md");
    assert_eq!(docs[0]["title"], "Refunds");
    assert_eq!(docs[0]["chunk_count"], 3);
    assert_eq!(docs[1]["title"], "Shipping");

    let (app_ref, key_ref) = (&app, key.as_str());
    let search = |q: &str| {
        let path = format!("/v1/knowledge/{id}/search?q={q}");
        async move { send(app_ref, Method::GET, &path, key_ref, None).await }
    };
    let found = json_of(search("return%20label").await, 200).await;
    let top = &found["data"][0];
    assert_eq!(top["link"], "refunds.md#by-mail");
    assert_eq!(top["heading_path"], json!(["Refunds", "By mail"]));
    assert!(top["chunk_id"].as_str().unwrap().starts_with("kc_"));
    let first_id = top["chunk_id"].clone();
    let shipping = json_of(search("arrive").await, 200).await;
    assert_eq!(shipping["data"][0]["link"], "shipping.html#times");
    assert_eq!(
        json_of(search("var").await, 200).await["data"],
        json!([]),
        "scripts are not text"
    );
    json_of(search("%22NEAR(a*%20-b)%22").await, 200).await;

    // Uploading the same document again writes nothing; a new one is added.
    let more = json!({"documents": [
        {"name": "refunds.md", "format": "markdown", "content": REFUNDS_V1},
        {"name": "hours.txt", "format": "text", "content": "Open nine to five."},
    ]});
    let up = json_of(
        send(
            &app,
            Method::POST,
            &format!("/v1/knowledge/{id}/documents"),
            &key,
            Some(more),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        up["indexed"],
        json!({"added": 1, "updated": 0, "unchanged": 1, "chunks_added": 1, "chunks_removed": 0})
    );
    assert_eq!(up["document_count"], 3);
    assert_eq!(
        json_of(search("label").await, 200).await["data"][0]["chunk_id"],
        first_id
    );

    let del = send(&app, Method::DELETE, &format!("/v1/knowledge/{id}"), &key, None).await;
    assert_eq!(del.status().as_u16(), 204);
    assert_error(
        send(&app, Method::GET, &format!("/v1/knowledge/{id}"), &key, None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(search("label").await, 404, "not_found").await;
    let list = json_of(send(&app, Method::GET, "/v1/knowledge", &key, None).await, 200).await;
    assert_eq!(list["data"], json!([]));
}

async fn the_api_refuses_bad_input_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = account(&app, "Acme").await;
    let (_, other_key) = account(&app, "Globex").await;
    let refused = |mut body: Value, edit: fn(&mut Value)| {
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            refused(upload_body(), |b| b["name"] = json!("  ")),
            422,
            "validation_failed",
            "name",
        ),
        (
            refused(upload_body(), |b| b["kind"] = json!("wiki")),
            422,
            "validation_failed",
            "kind",
        ),
        (
            json!({"name": "Docs", "kind": "urls"}),
            422,
            "validation_failed",
            "urls",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": []}),
            422,
            "validation_failed",
            "urls",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["https://example.com/a", "ftp://example.com/b"]}),
            422,
            "validation_failed",
            "urls[1]",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["/relative/page"]}),
            422,
            "validation_failed",
            "urls[0]",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["https://user:pw@example.com/"]}),
            422,
            "validation_failed",
            "urls[0]",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["https://example.com/#top"]}),
            422,
            "validation_failed",
            "urls[0]",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["https://example.com/a", "https://example.com/a"]}),
            422,
            "validation_failed",
            "urls[1]",
        ),
        (
            json!({"name": "Docs", "kind": "urls",
                   "urls": (0..101).map(|i| format!("https://example.com/{i}")).collect::<Vec<_>>()}),
            422,
            "validation_failed",
            "urls",
        ),
        (
            json!({"name": "Docs", "kind": "urls", "urls": ["https://example.com/a"],
                   "documents": [{"name": "a.md", "format": "markdown", "content": "A."}]}),
            422,
            "validation_failed",
            "documents",
        ),
        (
            json!({"name": "Docs", "kind": "upload"}),
            422,
            "validation_failed",
            "documents",
        ),
        (
            json!({"name": "Docs", "kind": "upload", "documents": []}),
            422,
            "validation_failed",
            "documents",
        ),
        (
            refused(upload_body(), |b| b["urls"] = json!(["https://example.com"])),
            422,
            "validation_failed",
            "urls",
        ),
        (
            refused(upload_body(), |b| b["documents"][1]["format"] = json!("pdf")),
            422,
            "validation_failed",
            "documents[1].format",
        ),
        (
            refused(upload_body(), |b| b["documents"][1]["name"] = json!("refunds.md")),
            422,
            "validation_failed",
            "documents[1].name",
        ),
        (
            refused(upload_body(), |b| b["documents"][0]["name"] = json!("a#b")),
            422,
            "validation_failed",
            "documents[0].name",
        ),
        (
            refused(upload_body(), |b| b["documents"][0]["content"] = json!(" \n ")),
            422,
            "validation_failed",
            "documents[0].content",
        ),
        (
            refused(upload_body(), |b| {
                b["documents"][0]["content"] = json!("x".repeat(300 * 1024))
            }),
            422,
            "validation_failed",
            "documents[0].content",
        ),
    ];
    for (body, status, code, param) in cases {
        let e = assert_error(
            send(&app, Method::POST, "/v1/knowledge", &key, Some(body.clone())).await,
            status,
            code,
        )
        .await;
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    let e = assert_error(
        send(
            &app,
            Method::POST,
            "/v1/knowledge",
            &key,
            Some(refused(upload_body(), |b| b["extra"] = json!(1))),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("extra"), "{e}");
    let list = json_of(send(&app, Method::GET, "/v1/knowledge", &key, None).await, 200).await;
    assert_eq!(list["data"], json!([]), "nothing refused was stored");

    let created = json_of(
        send(&app, Method::POST, "/v1/knowledge", &key, Some(upload_body())).await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    for (q, param) in [
        ("", "q"),
        ("?q=%22*-%22", "q"),
        ("?q=refund&limit=0", "limit"),
        ("?q=refund&limit=51", "limit"),
    ] {
        let e = assert_error(
            send(
                &app,
                Method::GET,
                &format!("/v1/knowledge/{id}/search{q}"),
                &key,
                None,
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(e["error"]["param"], param, "{q}: {e}");
    }
    let e = assert_error(
        send(
            &app,
            Method::POST,
            &format!("/v1/knowledge/{id}/documents"),
            &key,
            Some(json!({"documents": [
                {"name": "ok.md", "format": "markdown", "content": "Fine."},
                {"name": "bad.md", "format": "markdown", "content": ""},
            ]})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "documents[1].content");
    let got = json_of(
        send(&app, Method::GET, &format!("/v1/knowledge/{id}"), &key, None).await,
        200,
    )
    .await;
    assert_eq!(
        got["document_count"], 2,
        "a refused upload stores none of its documents"
    );

    // Another account's source, the same account's source seen by a key
    // of the other mode, or a malformed id, is not found.
    let test_key = json_of(app.create_key(&key, &json!({"mode": "test"})).await, 201).await;
    let test_key = test_key["secret"].as_str().unwrap().to_owned();
    let test_list = json_of(
        send(&app, Method::GET, "/v1/knowledge", &test_key, None).await,
        200,
    )
    .await;
    assert_eq!(test_list["data"], json!([]), "test mode sees no live source");
    for (method, path, body) in [
        (Method::GET, format!("/v1/knowledge/{id}"), None),
        (Method::DELETE, format!("/v1/knowledge/{id}"), None),
        (Method::GET, format!("/v1/knowledge/{id}/search?q=refund"), None),
        (
            Method::POST,
            format!("/v1/knowledge/{id}/documents"),
            Some(json!({"documents": [{"name": "x.md", "format": "markdown", "content": "Mine."}]})),
        ),
        (Method::GET, "/v1/knowledge/ks_nope".to_owned(), None),
    ] {
        for k in [&other_key, &test_key] {
            assert_error(
                send(&app, method.clone(), &path, k, body.clone()).await,
                404,
                "not_found",
            )
            .await;
        }
    }
    let list = json_of(
        send(&app, Method::GET, "/v1/knowledge", &other_key, None).await,
        200,
    )
    .await;
    assert_eq!(list["data"], json!([]));
    let got = json_of(
        send(&app, Method::GET, &format!("/v1/knowledge/{id}"), &key, None).await,
        200,
    )
    .await;
    assert_eq!(
        got["document_count"], 2,
        "the other account and mode changed nothing"
    );
}

/// Runs `bounty --database-url URL ARGS…`; (exit code, stdout).
fn bounty(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::bounty_command(dir.path())
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn the_cli_reindexes_only_what_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (acct, _) = account(&app, "Acme").await;
    let ks = help_center(&app.store, acct).await;
    let url = app.database_url().to_owned();

    let (code, out) = bounty(&url, &["knowledge", "reindex"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("nothing changed: 1 sources, 2 documents already up to date"),
        "{out}"
    );

    // A chunk row lost: the next run writes it back, and only it.
    let sql = "delete from knowledge_chunks where link = 'refunds.md#by-mail'";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
    let account = acct.to_string();
    let source = ks.to_string();
    let args = [
        "knowledge",
        "reindex",
        "--account",
        account.as_str(),
        "--source",
        source.as_str(),
    ];
    let (code, out) = bounty(&url, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("0 added, 1 updated, 1 unchanged; 1 chunks added, 0 removed"),
        "{out}"
    );
    assert!(
        out.contains("re-indexed 1 sources: 1 documents changed, 1 unchanged"),
        "{out}"
    );
    assert_eq!(
        app.store
            .search_chunks(acct, &[ks], &words("label"), 5)
            .await
            .unwrap()
            .len(),
        1
    );

    let (code, out) = bounty(&url, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("nothing changed"), "{out}");

    let (code, _) = bounty(
        &url,
        &[
            "knowledge",
            "reindex",
            "--source",
            "ks_01JD3K8Q9V7Y2X4W6T5R3P1N0M",
        ],
    );
    assert_eq!(code, Some(2), "an unknown source is the operator's input to fix");
    let (code, _) = bounty(&url, &["knowledge", "reindex", "--account", "nope"]);
    assert_eq!(code, Some(2));
}
