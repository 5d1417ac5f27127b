//! list_conversations: keyset pages by last activity.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aura_store::{ConversationId, ConversationStore, ListQuery, TurnStore};

use crate::common::{conversation, store, turn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_visits_each_conversation_once_newest_first_while_others_arrive() {
    let (_db, store) = store().await;
    let creators: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..125 {
                    ids.push(conversation(&store).await.id);
                }
                ids
            })
        })
        .collect();
    let mut before = HashSet::new();
    for task in creators {
        before.extend(task.await.expect("task"));
    }
    assert_eq!(before.len(), 1000);
    // Some of them get a turn: their activity is now their turn's time, not their start.
    for id in before.iter().take(50) {
        store
            .append_turn(*id, turn("hi", 1, 1))
            .await
            .expect("append");
    }

    // Others keep creating conversations while we page.
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    ids.push(conversation(&store).await.id);
                }
                ids
            })
        })
        .collect();

    let mut visited = Vec::new();
    let mut query = ListQuery {
        limit: Some(37),
        after: None,
    };
    let mut pages = 0;
    loop {
        let page = store.list_conversations(query.clone()).await.expect("page");
        pages += 1;
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), 37, "only the last page is short");
                visited.extend(page.items);
                query.after = Some(next);
            }
            None => {
                assert!(page.items.len() <= 37);
                visited.extend(page.items);
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut arrived = HashSet::new();
    for task in arrivals {
        arrived.extend(task.await.expect("task"));
    }
    assert!(!arrived.is_empty(), "conversations arrived while paging");

    let ids: Vec<ConversationId> = visited.iter().map(|c| c.id).collect();
    let unique: HashSet<ConversationId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no conversation twice");
    assert!(
        before.is_subset(&unique),
        "every conversation that existed is visited"
    );
    assert!(
        unique.difference(&before).all(|id| arrived.contains(id)),
        "the rest arrived during the paging"
    );
    for pair in visited.windows(2) {
        assert!(
            (pair[0].last_activity_at, pair[0].id) > (pair[1].last_activity_at, pair[1].id),
            "newest first: {:?} then {:?}",
            (pair[0].last_activity_at, pair[0].id),
            (pair[1].last_activity_at, pair[1].id)
        );
    }
    // One row beyond the page tells whether there is a next one: no empty last page.
    assert_eq!(pages, visited.len().div_ceil(37));
}

#[tokio::test]
async fn activity_orders_the_list_and_the_default_page_is_50() {
    let (_db, store) = store().await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(conversation(&store).await.id);
    }
    // The oldest conversation gets a turn: it is now the most recently active.
    store
        .append_turn(ids[0], turn("back again", 0, 0))
        .await
        .expect("append");
    let first = store
        .list_conversations(ListQuery::default())
        .await
        .expect("page");
    assert_eq!(first.items.len(), 50);
    assert_eq!(first.items[0].id, ids[0]);
    assert_eq!(first.items[0].turn_count, 1);
    assert_eq!(first.items[1].id, ids[59]);
    let rest = store
        .list_conversations(ListQuery {
            limit: Some(100),
            after: first.next,
        })
        .await
        .expect("page");
    assert_eq!(rest.items.len(), 10);
    assert_eq!(rest.next, None);
    assert_eq!(rest.items.last().map(|c| c.id), Some(ids[1]));

    // An empty store: one empty page, no cursor.
    let (_db2, empty) = crate::common::store().await;
    let page = empty
        .list_conversations(ListQuery::default())
        .await
        .expect("page");
    assert!(page.items.is_empty() && page.next.is_none());
}
