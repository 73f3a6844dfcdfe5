//! Hybrid retrieval, embeddings on index and `urls` sources, on both
//! backends: keyword and vector halves fused by reciprocal rank fusion;
//! re-indexing and deletion seen by retrieval (through the per-process
//! vector cache); tenant isolation; an embedder that fails leaves keyword
//! retrieval working; URL sources fetched in the background from a local
//! site (private addresses refused unless `allow_private`, unsupported
//! content types refused per URL, re-fetches incremental), and completed
//! by the CLI after an interruption. The retrieval latency of a 200-article
//! help center is measured and printed.

use std::time::{Duration, Instant};

use bounty_agents::knowledge::{
    Retrieval, add_documents, create_upload_source, create_url_source, embed_missing, fetch_url_source,
    retrieve,
};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, KnowledgeStatus, UrlStatus};
use bounty_core::vector::RRF_K;
use bounty_core::{AccountId, ApiKeyMode, KnowledgeName, KnowledgeSourceId};
use bounty_models::{Embedder, EmbeddingConfig};
use bounty_outbound::{Outbound, OutboundPolicy};
use bounty_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::knowledge::send;
use crate::support::knowledge_fakes::{ConceptEmbedder, HelpSite};
use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of};

backend_tests!(
    hybrid_retrieval_finds_by_keyword_and_by_meaning,
    retrieval_follows_reindexing_and_deletion,
    retrieval_is_scoped_to_the_account,
    an_embedding_failure_falls_back_to_keywords,
    url_sources_are_fetched_in_the_background,
    url_sources_refuse_private_addresses_by_default,
    the_cli_completes_an_interrupted_url_source_and_embeds,
    retrieval_of_a_200_article_help_center_is_fast,
);

const REFUNDS: &str = "# Refunds\n\nRefunds are issued within 30 days of purchase.\n\n\
## By mail\n\nPrint the return label and post the parcel.\n\n## Exceptions\n\nGift cards are final.\n";
const REFUNDS_V2: &str = "# Refunds\n\nRefunds are issued within 30 days of purchase.\n\n\
## By mail\n\nPrint the return label and post the parcel.\n\n## Exceptions\n\nGift cards and sale items are final.\n";
const SHIPPING: &str = "# Shipping\n\nParcels arrive within two days by courier.\n";
const ACCOUNTS: &str = "# Accounts\n\nForgot your password? Use the reset link on the login page.\n";

fn doc<'a>(name: &'a str, content: &'a str) -> DocumentInput<'a> {
    DocumentInput {
        name,
        format: DocumentFormat::Markdown,
        content,
    }
}

fn embedder(fake: &ConceptEmbedder) -> Embedder {
    let config: EmbeddingConfig = serde_json::from_value(fake.table()).unwrap();
    Embedder::from_config("concepts", &config).unwrap()
}

async fn options_with(fake: &ConceptEmbedder) -> TestOptions {
    TestOptions {
        embeddings: vec![("concepts".to_owned(), fake.table())],
        knowledge_embedding_model: Some("concepts".to_owned()),
        allow_private: true,
        ..TestOptions::default()
    }
}

async fn help_center(store: &Store, account: AccountId, e: Option<&Embedder>) -> KnowledgeSourceId {
    let (source, _) = create_upload_source(
        store,
        account,
        ApiKeyMode::Live,
        &KnowledgeName::parse("Help center").unwrap(),
        &[
            doc("refunds.md", REFUNDS),
            doc("shipping.md", SHIPPING),
            doc("accounts.md", ACCOUNTS),
        ],
    )
    .await
    .unwrap();
    if let Some(e) = e {
        let r = embed_missing(store, e, account, source.id, |_| {}).await.unwrap();
        assert_eq!((r.embedded, r.error), (5, None));
    }
    source.id
}

fn texts(r: &Retrieval) -> Vec<&str> {
    r.chunks.iter().map(|c| c.text.as_str()).collect()
}

/// Every score is the reciprocal rank fusion of the chunk's two ranks,
/// scaled by the best possible (2 / 61), and the chunks are best first.
fn assert_rrf(r: &Retrieval) {
    let part = |rank: Option<u32>| rank.map_or(0.0, |n| 1.0 / (RRF_K + f64::from(n)));
    for c in &r.chunks {
        let expected = (part(c.keyword_rank) + part(c.vector_rank)) / (2.0 / (RRF_K + 1.0));
        assert!((c.score - expected).abs() < 1e-5, "{c:?}: expected {expected}");
        assert!(c.score > 0.0 && c.score <= 1.0);
    }
    for pair in r.chunks.windows(2) {
        assert!(pair[0].score >= pair[1].score, "{r:?}");
    }
}

async fn hybrid_retrieval_finds_by_keyword_and_by_meaning(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fake = ConceptEmbedder::start().await;
    let e = embedder(&fake);
    let (acct, _) = app.create_account("Acme").await;
    let ks = help_center(&app.store, acct, Some(&e)).await;

    // By meaning: no chunk holds the word, the vector half finds refunds.
    let r = retrieve(&app.store, Some(&e), acct, &[ks], "reimbursement", 3)
        .await
        .unwrap();
    assert_eq!(r.keyword_hits, 0);
    assert_eq!(r.vector_hits, 5);
    assert_eq!(r.embedding_model.as_deref(), Some("concepts"));
    assert_eq!(r.chunks.len(), 3);
    assert_eq!(r.chunks[0].text, "Refunds are issued within 30 days of purchase.");
    assert_eq!(r.chunks[0].vector_rank, Some(1));
    assert_eq!(r.chunks[0].keyword_rank, None);
    assert_eq!(r.chunks[0].document, "refunds.md");
    assert_eq!(r.chunks[0].link, "refunds.md#refunds");
    assert_eq!(r.chunks[0].heading.as_deref(), Some("Refunds"));
    assert_rrf(&r);

    // By keyword: a word with no topic; found by both halves, it ranks
    // first with a score of one.
    let r = retrieve(&app.store, Some(&e), acct, &[ks], "label", 5)
        .await
        .unwrap();
    assert_eq!(r.keyword_hits, 1);
    assert_eq!(r.chunks[0].text, "Print the return label and post the parcel.");
    assert_eq!(r.chunks[0].keyword_rank, Some(1));
    assert!(r.chunks[0].vector_rank.is_some());
    assert_rrf(&r);

    // Agreement wins: the chunk both halves rank first scores one.
    let r = retrieve(&app.store, Some(&e), acct, &[ks], "forgot password login", 5)
        .await
        .unwrap();
    assert_eq!(r.chunks[0].document, "accounts.md");
    assert_eq!(
        (r.chunks[0].keyword_rank, r.chunks[0].vector_rank),
        (Some(1), Some(1))
    );
    assert!((r.chunks[0].score - 1.0).abs() < 1e-6);
    assert_rrf(&r);

    // Keyword only without an embedder; scores are then at most 0.5.
    let r = retrieve(&app.store, None, acct, &[ks], "parcels courier", 5)
        .await
        .unwrap();
    assert_eq!(r.embedding_model, None);
    assert_eq!(r.vector_hits, 0);
    assert_eq!(texts(&r)[0], "Parcels arrive within two days by courier.");
    assert!(r.chunks.iter().all(|c| c.score <= 0.5 && c.vector_rank.is_none()));
    assert_rrf(&r);

    // Nothing to search: no word, no source, k of zero.
    let none = retrieve(&app.store, None, acct, &[ks], " ?! ", 5).await.unwrap();
    assert!(none.chunks.is_empty());
    assert!(
        retrieve(&app.store, Some(&e), acct, &[], "refund", 5)
            .await
            .unwrap()
            .chunks
            .is_empty()
    );
    assert!(
        retrieve(&app.store, Some(&e), acct, &[ks], "refund", 0)
            .await
            .unwrap()
            .chunks
            .is_empty()
    );

    // What the transcript records.
    let r = retrieve(&app.store, Some(&e), acct, &[ks], "refund", 2)
        .await
        .unwrap();
    let recorded = serde_json::to_value(&r).unwrap();
    assert_eq!(recorded["query"], "refund");
    assert!(recorded["chunks"][0]["id"].as_str().unwrap().starts_with("kc_"));
    assert!(recorded["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(recorded["embedding_model"], "concepts");
}

async fn retrieval_follows_reindexing_and_deletion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fake = ConceptEmbedder::start().await;
    let e = embedder(&fake);
    let store = &app.store;
    let (acct, _) = app.create_account("Acme").await;
    let ks = help_center(store, acct, Some(&e)).await;
    let other = help_center(store, acct, Some(&e)).await;

    let before = retrieve(store, Some(&e), acct, &[ks], "gift cards final", 5)
        .await
        .unwrap();
    let old = before.chunks[0].clone();
    assert_eq!(old.text, "Gift cards are final.");

    // A changed document replaces its chunk in both halves; the cache sees
    // the new version at once.
    let source = store.get_knowledge_source(acct, ks).await.unwrap().unwrap();
    add_documents(store, acct, &source, &[doc("refunds.md", REFUNDS_V2)])
        .await
        .unwrap();
    let mid = retrieve(store, Some(&e), acct, &[ks], "gift cards final sale", 10)
        .await
        .unwrap();
    assert!(mid.chunks.iter().all(|c| c.id != old.id), "{mid:?}");
    let new = mid
        .chunks
        .iter()
        .find(|c| c.text == "Gift cards and sale items are final.")
        .unwrap();
    assert_eq!(new.keyword_rank, Some(1));
    assert_eq!(new.vector_rank, None, "not embedded yet");
    let r = embed_missing(store, &e, acct, ks, |_| {}).await.unwrap();
    assert_eq!(r.embedded, 1, "only the new chunk is embedded");
    let after = retrieve(store, Some(&e), acct, &[ks], "gift cards final sale", 10)
        .await
        .unwrap();
    assert_eq!(after.chunks[0].text, "Gift cards and sale items are final.");
    assert_eq!(
        (after.chunks[0].keyword_rank, after.chunks[0].vector_rank),
        (Some(1), Some(1))
    );

    // A document removed, then the whole source: gone from retrieval.
    store
        .remove_knowledge_documents_except(acct, ks, &["shipping.md".to_owned(), "accounts.md".to_owned()])
        .await
        .unwrap();
    let r = retrieve(store, Some(&e), acct, &[ks], "refunds gift", 10)
        .await
        .unwrap();
    assert!(r.chunks.iter().all(|c| c.document != "refunds.md"), "{r:?}");
    assert_eq!(r.vector_hits, 2);
    assert!(store.delete_knowledge_source(acct, ks).await.unwrap());
    let r = retrieve(store, Some(&e), acct, &[ks, other], "parcels", 10)
        .await
        .unwrap();
    assert!(!r.chunks.is_empty());
    assert!(r.chunks.iter().all(|c| c.source_id == other), "{r:?}");
    let r = retrieve(store, Some(&e), acct, &[ks], "parcels", 10)
        .await
        .unwrap();
    assert!(r.chunks.is_empty() && r.vector_hits == 0 && r.keyword_hits == 0);
}

async fn retrieval_is_scoped_to_the_account(backend: Backend) {
    let fake = ConceptEmbedder::start().await;
    let app = TestApp::spawn_with(backend, options_with(&fake).await).await;
    let e = embedder(&fake);
    let (a, _) = app.create_account("Acme").await;
    let (b, b_key) = app.create_account("Globex").await;
    let ks = help_center(&app.store, a, Some(&e)).await;
    let r = retrieve(&app.store, Some(&e), b, &[ks], "refunds parcels password", 10)
        .await
        .unwrap();
    assert!(r.chunks.is_empty(), "{r:?}");
    assert_eq!((r.keyword_hits, r.vector_hits), (0, 0));
    assert_error(
        send(
            &app,
            Method::GET,
            &format!("/v1/knowledge/{ks}/search?q=refunds"),
            &b_key,
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Mixed: only B's own source counts.
    let mine = help_center(&app.store, b, Some(&e)).await;
    let r = retrieve(&app.store, Some(&e), b, &[ks, mine], "refunds", 10)
        .await
        .unwrap();
    assert!(r.chunks.iter().all(|c| c.source_id == mine), "{r:?}");
}

async fn an_embedding_failure_falls_back_to_keywords(backend: Backend) {
    let fake = ConceptEmbedder::start().await;
    let app = TestApp::spawn_with(backend, options_with(&fake).await).await;
    let (_, key) = app.create_account("Acme").await;
    let call = |method: Method, path: String, body: Option<Value>| {
        let (app, key) = (&app, key.clone());
        async move { send(app, method, &path, &key, body).await }
    };
    let created = json_of(
        call(
            Method::POST,
            "/v1/knowledge".into(),
            Some(json!({"name": "Help", "kind": "upload", "documents": [
                {"name": "refunds.md", "format": "markdown", "content": REFUNDS},
            ]})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["indexed"]["embedded"], 3, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let found = json_of(
        call(
            Method::GET,
            format!("/v1/knowledge/{id}/search?q=reimbursement"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(found["data"][0]["matched"], "vector", "{found}");
    assert_eq!(
        found["data"][0]["text"],
        "Refunds are issued within 30 days of purchase."
    );
    assert_eq!(found["embedding_model"], "concepts");
    assert_eq!(found["keyword_hits"], 0);

    // The embedder goes down: the upload is indexed, keyword-only.
    fake.set_failing(true);
    let up = json_of(
        call(
            Method::POST,
            format!("/v1/knowledge/{id}/documents"),
            Some(json!({"documents": [{"name": "shipping.md", "format": "markdown", "content": SHIPPING}]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(up["indexed"]["added"], 1);
    assert_eq!(up["indexed"]["embedded"], 0);
    assert!(up["indexed"]["embed_error"].is_string(), "{up}");
    let found = json_of(
        call(Method::GET, format!("/v1/knowledge/{id}/search?q=courier"), None).await,
        200,
    )
    .await;
    assert_eq!(
        found["data"][0]["text"],
        "Parcels arrive within two days by courier."
    );
    assert_eq!(found["data"][0]["matched"], "keyword");
    assert_eq!(
        found["embedding_model"],
        Value::Null,
        "the query could not be embedded"
    );
    assert_eq!(found["vector_hits"], 0);

    // Back up: the next run embeds exactly what was missed.
    fake.set_failing(false);
    let before = fake.inputs();
    let acct = app.account_of(&key).await;
    let ks: KnowledgeSourceId = id.parse().unwrap();
    let r = embed_missing(&app.store, &embedder(&fake), acct, ks, |_| {})
        .await
        .unwrap();
    assert_eq!((r.embedded, r.error), (1, None));
    assert_eq!(fake.inputs() - before, 1);
    let found = json_of(
        call(Method::GET, format!("/v1/knowledge/{id}/search?q=delivery"), None).await,
        200,
    )
    .await;
    assert_eq!(
        found["data"][0]["text"],
        "Parcels arrive within two days by courier."
    );
    assert_eq!(found["data"][0]["matched"], "vector");
}

const PAGE_HTML: &str = "<html><head><title>Returns</title></head><body>\
<h1 id=\"returns\">Returns</h1><p>Refunds are paid back to the card within five days.</p></body></html>";
const PAGE_MD: &str = "# Delivery\n\nParcels arrive within two days.\n";
const PAGE_TXT: &str = "We are open from nine to five.";

fn site_pages(site: &HelpSite) -> Vec<String> {
    site.set("help/returns", "text/html; charset=utf-8", PAGE_HTML);
    site.set("help/delivery.md", "text/markdown", PAGE_MD);
    site.set("help/hours.txt", "text/plain", PAGE_TXT);
    site.set("help/manual.pdf", "application/pdf", "%PDF-1.4");
    [
        "help/returns",
        "help/delivery.md",
        "help/hours.txt",
        "help/manual.pdf",
        "help/gone",
    ]
    .iter()
    .map(|p| site.url(p))
    .collect()
}

async fn wait_ready(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = json_of(
            send(app, Method::GET, &format!("/v1/knowledge/{id}"), key, None).await,
            200,
        )
        .await;
        if got["status"] == "ready" {
            return got;
        }
        assert!(Instant::now() < deadline, "the source never became ready: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn url_sources_are_fetched_in_the_background(backend: Backend) {
    let fake = ConceptEmbedder::start().await;
    let app = TestApp::spawn_with(backend, options_with(&fake).await).await;
    let site = HelpSite::start().await;
    let urls = site_pages(&site);
    let (acct, key) = app.create_account("Acme").await;
    let created = json_of(
        send(
            &app,
            Method::POST,
            "/v1/knowledge",
            &key,
            Some(json!({"name": "Site", "kind": "urls", "urls": urls})),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(created["kind"], "urls");
    assert_eq!(created["status"], "indexing");
    assert_eq!(created["urls"].as_array().unwrap().len(), 5);
    assert_eq!(created["urls"][0]["status"], "pending");
    let id = created["id"].as_str().unwrap().to_owned();

    let got = wait_ready(&app, &key, &id).await;
    assert_eq!(got["document_count"], 3, "{got}");
    let u = got["urls"].as_array().unwrap();
    assert_eq!(u[0]["url"], urls[0].as_str());
    for i in 0..3 {
        assert_eq!(u[i]["status"], "fetched", "{got}");
        assert_eq!(u[i]["error"], Value::Null);
        assert!(u[i]["chunk_count"].as_i64().unwrap() >= 1);
    }
    assert_eq!(u[3]["status"], "failed");
    assert!(
        u[3]["error"]
            .as_str()
            .unwrap()
            .contains("unsupported Content-Type `application/pdf`"),
        "{got}"
    );
    assert_eq!(u[4]["status"], "failed");
    assert!(u[4]["error"].as_str().unwrap().contains("HTTP 404"), "{got}");
    let names: Vec<&str> = got["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&urls[0].as_str()));

    // The chunk's link is the page's URL, with the section's anchor; the
    // chunks were embedded in the background.
    let found = json_of(
        send(
            &app,
            Method::GET,
            &format!("/v1/knowledge/{id}/search?q=reimbursement"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        found["data"][0]["link"],
        format!("{}#returns", urls[0]),
        "{found}"
    );
    assert_eq!(found["data"][0]["matched"], "vector");
    let ks: KnowledgeSourceId = id.parse().unwrap();
    let r = retrieve(&app.store, None, acct, &[ks], "open nine", 3)
        .await
        .unwrap();
    assert_eq!(r.chunks[0].link, urls[2]);
    assert_eq!(r.chunks[0].document, urls[2]);

    // Fetching again: unchanged pages write nothing.
    let outbound = Outbound::new(OutboundPolicy {
        allow_private: true,
        ..OutboundPolicy::default()
    })
    .unwrap();
    let docs_before = app.store.knowledge_documents(acct, ks).await.unwrap();
    let again = fetch_url_source(&app.store, &outbound, None, acct, ks, |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((again.index.unchanged, again.index.changed()), (3, false));
    assert_eq!((again.fetched, again.failed), (3, 2));
    assert_eq!(
        app.store.knowledge_documents(acct, ks).await.unwrap(),
        docs_before
    );

    // A page changes and another comes back: only they are written.
    site.set("help/hours.txt", "text/plain", "We are open from eight to six.");
    site.set("help/gone", "text/markdown", "# Back\n\nThis page is back.");
    let mut seen = Vec::new();
    let r = fetch_url_source(&app.store, &outbound, None, acct, ks, |done, total, _| {
        seen.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!((r.index.added, r.index.updated, r.index.unchanged), (1, 1, 2));
    assert_eq!(seen.last(), Some(&(5, 5)));
    let urls_now = app.store.knowledge_urls(acct, ks).await.unwrap();
    assert_eq!(urls_now[4].status, UrlStatus::Fetched);
    assert_eq!(urls_now[4].error, None);
    let r = retrieve(&app.store, None, acct, &[ks], "eight", 3).await.unwrap();
    assert_eq!(r.chunks[0].text, "We are open from eight to six.");
    assert!(
        retrieve(&app.store, None, acct, &[ks], "nine", 3)
            .await
            .unwrap()
            .chunks
            .is_empty()
    );
}

async fn url_sources_refuse_private_addresses_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let site = HelpSite::start().await;
    let urls = site_pages(&site);
    let (_, key) = app.create_account("Acme").await;
    let created = json_of(
        send(
            &app,
            Method::POST,
            "/v1/knowledge",
            &key,
            Some(json!({"name": "Site", "kind": "urls", "urls": &urls[..2]})),
        )
        .await,
        202,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let got = wait_ready(&app, &key, &id).await;
    assert_eq!(got["document_count"], 0);
    for u in got["urls"].as_array().unwrap() {
        assert_eq!(u["status"], "failed");
        let error = u["error"].as_str().unwrap();
        assert!(
            error.contains("127.0.0.1") && error.contains("may not be reached"),
            "{error}"
        );
        assert!(
            !error.contains("/help"),
            "the URL's path is not repeated: {error}"
        );
    }
    assert_eq!(site.requests(), 0, "nothing was fetched");
}

/// Runs `bounty ARGS…` in a directory holding `toml` as `bounty.toml`;
/// (exit code, stdout).
fn bounty_with_config(toml: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bounty.toml"), toml).unwrap();
    let out = crate::support::bounty_command(dir.path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn the_cli_completes_an_interrupted_url_source_and_embeds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fake = ConceptEmbedder::start().await;
    let site = HelpSite::start().await;
    let urls = site_pages(&site);
    let (acct, _) = app.create_account("Acme").await;
    // Created, then the process died before fetching anything.
    let source = create_url_source(
        &app.store,
        acct,
        ApiKeyMode::Live,
        &KnowledgeName::parse("Site").unwrap(),
        &urls[..3],
    )
    .await
    .unwrap();
    assert_eq!(source.status, KnowledgeStatus::Indexing);
    let upload = help_center(&app.store, acct, None).await;

    let toml = format!(
        "[database]\nurl = \"{}\"\n\n[tools]\nallow_private = true\n\n[knowledge]\nembedding_model = \"concepts\"\n\n\
         [embeddings.concepts]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"concepts\"\nmax_retries = 0\n",
        app.database_url(),
        fake.base_url()
    );
    let (code, out) = bounty_with_config(&toml, &["knowledge", "reindex"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 added, 0 updated, 0 unchanged"), "{out}");
    assert!(out.contains("embedded 8 chunks with concepts"), "{out}");
    let s = app
        .store
        .get_knowledge_source(acct, source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.status, s.document_count), (KnowledgeStatus::Ready, 3));
    let e = embedder(&fake);
    for ks in [source.id, upload] {
        assert_eq!(
            app.store
                .count_chunks_to_embed(acct, ks, "concepts")
                .await
                .unwrap(),
            0
        );
    }
    let r = retrieve(
        &app.store,
        Some(&e),
        acct,
        &[source.id, upload],
        "reimbursement",
        2,
    )
    .await
    .unwrap();
    assert_eq!(r.vector_hits, 8);

    // Again: nothing changes, nothing is embedded.
    let before = fake.inputs();
    let (code, out) = bounty_with_config(&toml, &["knowledge", "reindex"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(fake.inputs(), before);

    // An embedding model that is not configured stops the CLI at startup.
    let bad = toml.replace("embedding_model = \"concepts\"", "embedding_model = \"nope\"");
    let (code, out) = bounty_with_config(&bad, &["knowledge", "reindex"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("knowledge.embedding_model"), "{out}");
}

async fn retrieval_of_a_200_article_help_center_is_fast(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fake = ConceptEmbedder::start().await;
    let e = embedder(&fake);
    let (acct, _) = app.create_account("Acme").await;
    let topics = ["refund", "delivery", "password", "opening hours", "gift card"];
    let articles: Vec<(String, String)> = (0..200)
        .map(|i| {
            let t = topics[i % topics.len()];
            (
                format!("article-{i:03}.md"),
                format!(
                    "# Article {i} on {t}\n\nThis explains {t} case number {i} in detail.\n\n\
                     ## Steps\n\nFirst check the {t} settings for item {i}. Then contact us.\n\n\
                     ## Notes\n\nPolicy {i} applies to every {t} request made online.\n"
                ),
            )
        })
        .collect();
    let name = KnowledgeName::parse("Big help center").unwrap();
    let mut ks = None;
    for batch in articles.chunks(50) {
        let docs: Vec<DocumentInput<'_>> = batch.iter().map(|(n, c)| doc(n, c)).collect();
        ks = Some(match ks {
            None => {
                create_upload_source(&app.store, acct, ApiKeyMode::Live, &name, &docs)
                    .await
                    .unwrap()
                    .0
            }
            Some(s) => add_documents(&app.store, acct, &s, &docs).await.unwrap().0,
        });
    }
    let ks = ks.unwrap();
    assert_eq!(ks.chunk_count, 600);
    let r = embed_missing(&app.store, &e, acct, ks.id, |_| {}).await.unwrap();
    assert_eq!(r.embedded, 600);

    // Warm the cache, then measure Bounty's own part (the embedding call
    // excluded).
    retrieve(&app.store, Some(&e), acct, &[ks.id], "refund policy", 5)
        .await
        .unwrap();
    let mut own = Vec::new();
    for i in 0..50 {
        let q = format!("how do I get a {} for item {i}", topics[i % topics.len()]);
        let r = retrieve(&app.store, Some(&e), acct, &[ks.id], &q, 5)
            .await
            .unwrap();
        assert_eq!(r.chunks.len(), 5);
        assert!(r.vector_hits == 20 && r.keyword_hits > 0);
        own.push(r.latency.saturating_sub(r.embed_latency));
    }
    own.sort();
    let p50 = own[own.len() / 2];
    let p99 = own[own.len() * 99 / 100];
    println!(
        "retrieve over 200 articles (600 chunks), {backend:?}: p50 {p50:?}, p99 {p99:?} (embedding call excluded)"
    );
    assert!(p50 < Duration::from_millis(100), "p50 {p50:?}");
}
