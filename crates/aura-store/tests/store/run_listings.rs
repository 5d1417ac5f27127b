//! list_runs, find_running_run, list_run_requests and list_all_pending_requests: order,
//! keyset paging while rows arrive, bounds, NotFound.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aura_store::{
    AskUserRequest, ConversationId, Cursor, Entity, ListQuery, Page, PgStore, RequestDraft,
    RequestKey, RequestStatus, RequestStore, Run, RunDraft, RunId, RunKey, RunStore, StoreError,
};
use aura_testkit::TestDb;

use crate::common::{conversation, store};

/// Inserts `n` stopped runs into conversation `c` as the superuser, started in groups of
/// three at the same microsecond (ties ordered by id), the newest `ago_s` seconds ago.
async fn seed_runs(db: &TestDb, c: ConversationId, n: i32, ago_s: i32) {
    db.superuser_client()
        .await
        .execute(
            "INSERT INTO aura.runs (conversation_id, id, status, started_at, ended_at) \
             SELECT $1::text::uuid, \
                    (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' \
                     || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid, 'stopped', t, t \
               FROM (SELECT now() - ($3::int + ($2::int - i) / 3) * interval '1 second' AS t, \
                            md5(random()::text || i::text) AS h \
                       FROM generate_series(1, $2::int) AS i) s",
            &[&c.to_string(), &n, &ago_s],
        )
        .await
        .expect("seed runs");
}

/// Every page of a listing, from the first, with `limit` rows each.
async fn all_pages<T, F, Fut>(limit: u32, mut list: F) -> Vec<T>
where
    F: FnMut(ListQuery) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut query = ListQuery {
        limit: Some(limit),
        after: None,
    };
    loop {
        let page = list(query.clone()).await.expect("page");
        let full = page.items.len() == limit as usize;
        items.extend(page.items);
        match page.next {
            Some(next) => {
                assert!(full, "only the last page is short");
                query.after = Some(next);
            }
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_come_newest_first_and_paging_while_runs_start_skips_none() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    seed_runs(&db, c, 40, 10).await;
    let other = conversation(&store).await.id;
    seed_runs(&db, other, 5, 10).await;

    let mut expected: Vec<Run> = all_pages(100, |q| store.list_runs(c, q)).await;
    assert_eq!(expected.len(), 40, "only this conversation's runs");
    expected.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.id)));
    let ties = expected
        .windows(2)
        .filter(|w| w[0].started_at == w[1].started_at)
        .count();
    assert!(ties > 0, "the seed has runs started at the same time");

    // New runs start (and stop) while we page: they are newer than every page read.
    let stop = Arc::new(AtomicBool::new(false));
    let starter = tokio::spawn({
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        async move {
            let mut started = 0;
            while !stop.load(Ordering::Relaxed) || started == 0 {
                let run = store
                    .start_run(c, RunDraft::default())
                    .await
                    .expect("start");
                store
                    .stop_run(RunKey::from(&run), None)
                    .await
                    .expect("stop");
                started += 1;
            }
            started
        }
    });
    let store2 = Arc::clone(&store);
    let paged: Vec<Run> = all_pages(7, |q| {
        let store = Arc::clone(&store2);
        async move {
            let page = store.list_runs(c, q).await;
            tokio::task::yield_now().await;
            page
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let started = starter.await.expect("starter");
    assert!(started > 0);

    let ids: Vec<RunId> = paged.iter().map(|r| r.id).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no run twice"
    );
    let old: Vec<&Run> = paged
        .iter()
        .filter(|r| expected.iter().any(|e| e.id == r.id))
        .collect();
    assert_eq!(old.len(), 40, "every run that existed is visited");
    for pair in paged.windows(2) {
        assert!(
            (pair[0].started_at, pair[0].id) > (pair[1].started_at, pair[1].id),
            "newest first"
        );
    }
    assert_eq!(
        paged[paged.len() - 40..]
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        expected.iter().map(|r| r.id).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_running_run_and_a_runs_requests() {
    let (_db, store) = store().await;
    let c = conversation(&store).await.id;
    assert_eq!(store.find_running_run(c).await.expect("none yet"), None);
    let run = store
        .start_run(c, RunDraft::default())
        .await
        .expect("start");
    assert_eq!(
        store.find_running_run(c).await.expect("running"),
        Some(run.clone())
    );
    let key = RunKey::from(&run);
    assert!(store.list_run_requests(key).await.expect("none").is_empty());

    let mut asked = Vec::new();
    for q in ["first?", "second?", "third?"] {
        asked.push(
            store
                .create_request(c, RequestDraft::new(Some(run.id), q))
                .await
                .expect("ask"),
        );
    }
    // Not this run's: one asked by no run.
    store
        .create_request(c, RequestDraft::new(None, "unrelated?"))
        .await
        .expect("ask");
    let answered = store
        .answer_request(RequestKey::from(&asked[1]), "yes")
        .await
        .expect("answer");
    asked[1] = answered;
    let stopped = store.stop_run(key, None).await.expect("stop");
    assert_eq!(stopped.cancelled_requests, 2);
    assert_eq!(store.find_running_run(c).await.expect("stopped"), None);

    let listed = store.list_run_requests(key).await.expect("requests");
    let questions: Vec<&str> = listed.iter().map(|r| r.question.as_str()).collect();
    assert_eq!(questions, ["first?", "second?", "third?"], "oldest first");
    let statuses: Vec<RequestStatus> = listed.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RequestStatus::Cancelled,
            RequestStatus::Answered,
            RequestStatus::Cancelled
        ]
    );
    assert_eq!(listed[1], asked[1]);

    let gone = ConversationId::new();
    match store.find_running_run(gone).await {
        Err(StoreError::NotFound {
            entity: Entity::Conversation,
            id,
        }) => assert_eq!(id, gone.to_string()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let missing = RunKey::new(c, RunId::new());
    match store.list_run_requests(missing).await {
        Err(StoreError::NotFound {
            entity: Entity::Run,
            id,
        }) => assert_eq!(id, missing.to_string()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match store.list_runs(gone, ListQuery::default()).await {
        Err(StoreError::NotFound {
            entity: Entity::Conversation,
            ..
        }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    let empty = store
        .list_runs(conversation(&store).await.id, ListQuery::default())
        .await
        .expect("no runs");
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// `n` pending requests in each of `conversations` new conversations (asked by no run).
async fn pending(store: &PgStore, conversations: usize, n: usize) -> Vec<AskUserRequest> {
    let mut made = Vec::new();
    for _ in 0..conversations {
        let c = conversation(store).await.id;
        for i in 0..n {
            made.push(
                store
                    .create_request(c, RequestDraft::new(None, &format!("q{i}?")))
                    .await
                    .expect("ask"),
            );
        }
    }
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_requests_of_every_conversation_oldest_first_while_others_arrive() {
    let (_db, store) = store().await;
    let made = pending(&store, 6, 10).await;
    // Some are answered before the paging starts: not pending, not listed.
    let mut before = HashSet::new();
    for (i, request) in made.iter().enumerate() {
        if i % 4 == 0 {
            store
                .answer_request(RequestKey::from(request), "done")
                .await
                .expect("answer");
        } else {
            before.insert(RequestKey::from(request));
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let asker = tokio::spawn({
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        async move {
            let mut made = Vec::new();
            while !stop.load(Ordering::Relaxed) || made.is_empty() {
                made.extend(pending(&store, 1, 2).await);
            }
            made
        }
    });
    let store2 = Arc::clone(&store);
    let paged: Vec<AskUserRequest> = all_pages(4, |q| {
        let store = Arc::clone(&store2);
        async move {
            let page = store.list_all_pending_requests(q).await;
            tokio::task::yield_now().await;
            page
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let arrived: HashSet<RequestKey> = asker
        .await
        .expect("asker")
        .iter()
        .map(RequestKey::from)
        .collect();

    let keys: Vec<RequestKey> = paged.iter().map(RequestKey::from).collect();
    let unique: HashSet<RequestKey> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "no request twice");
    assert!(
        before.is_subset(&unique),
        "every pending request is visited"
    );
    assert!(
        unique.difference(&before).all(|k| arrived.contains(k)),
        "the rest arrived while paging"
    );
    assert!(paged.iter().all(|r| r.status == RequestStatus::Pending));
    for pair in paged.windows(2) {
        assert!(
            (pair[0].created_at, pair[0].conversation_id, pair[0].id)
                < (pair[1].created_at, pair[1].conversation_id, pair[1].id),
            "oldest first"
        );
    }
}

#[tokio::test]
async fn listing_bounds_and_foreign_cursors() {
    let (db, store) = store().await;
    let c = conversation(&store).await.id;
    seed_runs(&db, c, 3, 1).await;
    pending(&store, 1, 3).await;
    let invalid = |result: Result<(), StoreError>, field: &str| match result {
        Err(StoreError::InvalidInput { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected InvalidInput {field}, got {other:?}"),
    };
    for limit in [0, 101] {
        let q = ListQuery {
            limit: Some(limit),
            after: None,
        };
        invalid(store.list_runs(c, q.clone()).await.map(drop), "limit");
        invalid(store.list_all_pending_requests(q).await.map(drop), "limit");
    }
    let runs_cursor = store
        .list_runs(
            c,
            ListQuery {
                limit: Some(1),
                after: None,
            },
        )
        .await
        .expect("runs")
        .next
        .expect("more runs");
    let requests_cursor = store
        .list_all_pending_requests(ListQuery {
            limit: Some(1),
            after: None,
        })
        .await
        .expect("requests")
        .next
        .expect("more requests");
    let after = |cursor: &Cursor| ListQuery {
        limit: Some(1),
        after: Some(cursor.clone()),
    };
    invalid(
        store
            .list_all_pending_requests(after(&runs_cursor))
            .await
            .map(drop),
        "after",
    );
    invalid(
        store.list_runs(c, after(&requests_cursor)).await.map(drop),
        "after",
    );
    invalid(
        aura_store::ConversationStore::list_conversations(&*store, after(&runs_cursor))
            .await
            .map(drop),
        "after",
    );
    invalid(
        store
            .list_runs(c, after(&Cursor::from("garbage")))
            .await
            .map(drop),
        "after",
    );
    let q = ListQuery {
        limit: Some(100),
        after: None,
    };
    assert_eq!(
        store
            .list_runs(c, q.clone())
            .await
            .expect("100")
            .items
            .len(),
        3
    );
    assert_eq!(
        store
            .list_all_pending_requests(q)
            .await
            .expect("100")
            .items
            .len(),
        3
    );
}
