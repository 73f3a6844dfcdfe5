//! The store's task search (`TaskFilter::search`), on both backends: it
//! covers every task rather than one page, pages by cursor like the
//! unfiltered list, folds case, stays in its account, and treats `%`,
//! `_` and `\` as themselves.

use bounty_core::{PageLimit, TaskId};
use bounty_store::{Store, TaskFilter};

use crate::on_both_backends;
use crate::support::seed::{self, Tenant};
use crate::support::{Backend, TestApp};

async fn search(
    store: &Store,
    t: &Tenant,
    needle: &str,
    limit: u32,
    after: Option<TaskId>,
) -> (Vec<TaskId>, Option<TaskId>) {
    let filter = TaskFilter {
        search: Some(needle.to_owned()),
        ..Default::default()
    };
    let page = store
        .list_tasks(t.account, &filter, PageLimit::new(limit).unwrap(), after)
        .await
        .unwrap();
    let next = page.next_cursor.map(|c| c.parse().unwrap());
    (page.items.into_iter().map(|task| task.id).collect(), next)
}

async fn search_finds_tasks_on_later_pages_and_escapes_wildcards(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let acme = seed::tenant(store, "Acme").await;
    let globex = seed::tenant(store, "Globex").await;
    // The oldest tasks, so the newest-first list shows them last.
    let coupon = seed::queued_task(store, &acme, "A 50% off COUPON").await;
    let decoy = seed::queued_task(store, &acme, "500 off, no percent").await;
    let underscore = seed::queued_task(store, &acme, "path a_b\\c").await;
    let underscore_decoy = seed::queued_task(store, &acme, "path axb").await;
    for i in 0..12 {
        seed::queued_task(store, &acme, &format!("Other ticket {i:02}")).await;
    }
    seed::queued_task(store, &globex, "A 50% off coupon").await;

    // Unfiltered, the coupon is beyond the first page.
    let (first, _) = search(store, &acme, "", 5, None).await;
    assert!(!first.contains(&coupon));

    // Searched, it is the first match; `%` is literal, case folds, and
    // the other account's twin is not found.
    assert_eq!(
        search(store, &acme, "50% OFF coupon", 5, None).await,
        (vec![coupon], None)
    );
    assert_eq!(search(store, &acme, "50%", 5, None).await, (vec![coupon], None));
    // `_` and `\` are literal too (a backslash is `\\` in the JSON text).
    assert_eq!(
        search(store, &acme, "a_b", 5, None).await,
        (vec![underscore], None)
    );
    assert_eq!(
        search(store, &acme, "b\\\\c", 5, None).await,
        (vec![underscore], None)
    );
    let mut both = search(store, &acme, "path a", 5, None).await.0;
    both.sort_by_key(|id| id.to_string());
    let mut want = vec![underscore, underscore_decoy];
    want.sort_by_key(|id| id.to_string());
    assert_eq!(both, want);
    // The body matches as well as the subject.
    assert_eq!(
        search(store, &acme, "body of 500", 5, None).await,
        (vec![decoy], None)
    );

    // Pages of a search are pages of its matches.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (ids, next) = search(store, &acme, "other TICKET", 5, after).await;
        assert!(ids.len() <= 5);
        seen.extend(ids);
        match next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    let mut sorted = seen.clone();
    sorted.sort_by_key(|id| std::cmp::Reverse(id.to_string()));
    sorted.dedup();
    assert_eq!(sorted, seen, "newest first, each once");

    assert!(search(store, &acme, "no such text", 5, None).await.0.is_empty());
}

/// Filters combine with the search and with each other, whichever path the
/// search takes (SQLite narrows through its trigram index from three
/// characters; a shorter needle scans), and the index never lets a task
/// of another account or one that fails the `like` through.
async fn filters_combine_with_search_on_every_path(backend: Backend) {
    use bounty_core::TaskStatus;

    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let acme = seed::tenant(store, "Acme").await;
    let globex = seed::tenant(store, "Globex").await;
    // Finished first: the seed's claim takes whatever is due.
    let resolved = seed::resolved_task(store, &acme, "Zq refund done").await;
    let failed = seed::failed_task(store, &acme, "Zq parcel lost").await;
    let queued = seed::queued_task(store, &acme, "Zq refund wanted").await;
    seed::queued_task(store, &globex, "Zq refund wanted").await;

    let list = |status: Option<TaskStatus>, needle: &str| {
        let filter = TaskFilter {
            status,
            search: Some(needle.to_owned()),
            ..Default::default()
        };
        async move {
            let page = store
                .list_tasks(acme.account, &filter, PageLimit::new(10).unwrap(), None)
                .await
                .unwrap();
            page.items.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    // Newest first on both paths.
    assert_eq!(list(None, "zq").await, vec![queued, failed, resolved]);
    assert_eq!(list(None, "zq ").await, vec![queued, failed, resolved]);
    assert_eq!(list(None, "refund").await, vec![queued, resolved]);
    assert_eq!(list(Some(TaskStatus::Queued), "refund").await, vec![queued]);
    assert_eq!(list(Some(TaskStatus::Queued), "zq").await, vec![queued]);
    assert_eq!(
        list(Some(TaskStatus::Failed), "refund").await,
        Vec::<TaskId>::new()
    );
    assert_eq!(list(Some(TaskStatus::Failed), "PARCEL").await, vec![failed]);
    // Only the status filter, no search: its own index.
    let filter = TaskFilter {
        status: Some(TaskStatus::Queued),
        agent_id: Some(acme.agent),
        ..Default::default()
    };
    let page = store
        .list_tasks(acme.account, &filter, PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![queued]);
}

on_both_backends!(
    search_finds_tasks_on_later_pages_and_escapes_wildcards,
    filters_combine_with_search_on_every_path
);
