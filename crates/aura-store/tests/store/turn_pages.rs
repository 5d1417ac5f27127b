//! list_turns (pages by seq, both directions, the latest N) and
//! get_conversation_with_last_turns: ordering, paging while turns are appended, bounds,
//! NotFound.

use std::sync::Arc;

use aura_store::{
    ConversationId, ConversationStore, Entity, PgStore, StoreError, Turn, TurnPage, TurnQuery,
    TurnStore,
};

use crate::common::{append_in_background, conversation, store, turn};

/// A conversation with `n` turns, each saying its seq.
async fn with_turns(store: &PgStore, n: i32) -> ConversationId {
    let id = conversation(store).await.id;
    for i in 1..=n {
        let content = format!("turn {i}");
        let stored = store
            .append_turn(id, turn(&content, i, 1))
            .await
            .expect("append");
        assert_eq!(stored.seq, i);
    }
    id
}

fn seqs(turns: &[Turn]) -> Vec<i32> {
    turns.iter().map(|t| t.seq).collect()
}

async fn page(store: &PgStore, id: ConversationId, query: TurnQuery) -> TurnPage {
    store.list_turns(id, query).await.expect("list_turns")
}

#[tokio::test]
async fn pages_go_forward_and_backward_in_seq_order() {
    let (_db, store) = store().await;
    let id = with_turns(&store, 25).await;
    let all = store.get_conversation(id).await.expect("get").turns;

    // Forward from the start: 1..=10, 11..=20, 21..=25, each `next` the following page.
    let first = page(&store, id, TurnQuery::first(10)).await;
    assert_eq!(first.turns, all[0..10]);
    assert_eq!(first.next, Some(TurnQuery::after(10, 10)));
    let second = page(&store, id, TurnQuery::after(10, 10)).await;
    assert_eq!(second.turns, all[10..20]);
    let third = page(&store, id, second.next.expect("more")).await;
    assert_eq!(seqs(&third.turns), (21..=25).collect::<Vec<_>>());
    assert_eq!(third.next, None);

    // The latest, then backward: 16..=25, 6..=15, 1..=5, each in seq order.
    let latest = page(&store, id, TurnQuery::latest(10)).await;
    assert_eq!(latest.turns, all[15..25]);
    assert_eq!(latest.next, Some(TurnQuery::before(16, 10)));
    let older = page(&store, id, latest.next.expect("older")).await;
    assert_eq!(older.turns, all[5..15]);
    let oldest = page(&store, id, older.next.expect("older")).await;
    assert_eq!(seqs(&oldest.turns), [1, 2, 3, 4, 5]);
    assert_eq!(oldest.next, None);

    // Around the edges: nothing before 1, nothing after the last; exactly full pages say
    // so without an empty page after them.
    for query in [
        TurnQuery::before(1, 5),
        TurnQuery::after(25, 5),
        TurnQuery::after(1000, 5),
    ] {
        let empty = page(&store, id, query).await;
        assert!(empty.turns.is_empty() && empty.next.is_none(), "{query:?}");
    }
    let exact = page(&store, id, TurnQuery::after(20, 5)).await;
    assert_eq!(
        (seqs(&exact.turns), exact.next),
        (vec![21, 22, 23, 24, 25], None)
    );
    let exact = page(&store, id, TurnQuery::before(6, 5)).await;
    assert_eq!(
        (seqs(&exact.turns), exact.next),
        (vec![1, 2, 3, 4, 5], None)
    );
    let beyond = page(&store, id, TurnQuery::before(1000, 3)).await;
    assert_eq!(seqs(&beyond.turns), [23, 24, 25]);
    assert_eq!(page(&store, id, TurnQuery::latest(500)).await.turns, all);

    // A conversation without turns: empty pages, not NotFound.
    let empty = conversation(&store).await.id;
    for query in [
        TurnQuery::first(5),
        TurnQuery::latest(5),
        TurnQuery::before(3, 5),
    ] {
        let got = page(&store, empty, query).await;
        assert!(got.turns.is_empty() && got.next.is_none());
    }
}

/// Paging forward while other turns are appended: every turn, old and new, exactly once
/// and in order; paging backward from the latest while appends go on: every turn below the
/// start exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_turns_are_appended_never_repeats_or_skips() {
    let (_db, store) = store().await;
    let id = with_turns(&store, 120).await;
    let writer = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            for i in 0..120 {
                store
                    .append_turn(id, turn("more", i, 0))
                    .await
                    .expect("append");
            }
        }
    });

    let start = page(&store, id, TurnQuery::latest(7)).await;
    let mut backward = start.turns.clone();
    let mut query = start.next;
    while let Some(q) = query {
        let got = page(&store, id, q).await;
        let mut older = got.turns;
        older.extend(backward);
        backward = older;
        query = got.next;
    }
    let top = backward.last().expect("turns").seq;
    assert!(top >= 120);
    assert_eq!(seqs(&backward), (1..=top).collect::<Vec<_>>(), "backward");

    let mut forward: Vec<Turn> = Vec::new();
    let mut query = TurnQuery::first(13);
    let mut pages = 0;
    loop {
        let writing = !writer.is_finished();
        let got = page(&store, id, query).await;
        pages += 1;
        forward.extend(got.turns.iter().cloned());
        match got.next {
            Some(next) => query = next,
            // The end for now: while the writer runs, come back from the last seq read.
            None if writing => {
                query = TurnQuery::after(forward.last().map_or(0, |t| t.seq), 13);
                tokio::task::yield_now().await;
            }
            None => break,
        }
    }
    writer.await.expect("writer");
    assert_eq!(seqs(&forward), (1..=240).collect::<Vec<_>>(), "forward");
    assert!(pages >= 240 / 13);
    let all = store.get_conversation(id).await.expect("get").turns;
    assert_eq!(forward, all, "pages hold the stored turns");
}

#[tokio::test]
async fn the_conversation_with_its_last_turns_is_one_moment() {
    let (_db, store) = store().await;
    let id = with_turns(&store, 25).await;
    let full = store.get_conversation(id).await.expect("get");

    let last = store
        .get_conversation_with_last_turns(id, 10)
        .await
        .expect("last 10");
    assert_eq!(last.conversation, full.conversation);
    assert_eq!(last.turns, full.turns[15..]);
    let more = store
        .get_conversation_with_last_turns(id, 40)
        .await
        .expect("last 40 of 25");
    assert_eq!(more, full);
    let none = store
        .get_conversation_with_last_turns(id, 0)
        .await
        .expect("no turns");
    assert_eq!(none.conversation, full.conversation);
    assert!(none.turns.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_turns_stay_consistent_while_turns_are_appended() {
    let (_db, store) = store().await;
    let id = conversation(&store).await.id;
    let writers = append_in_background(&store, id, 3, 60);
    let mut reads = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let got = store
            .get_conversation_with_last_turns(id, 10)
            .await
            .expect("read");
        let n = got.conversation.turn_count;
        let want: Vec<i32> = ((n - 9).max(1)..=n).collect();
        assert_eq!(seqs(&got.turns), want, "turn_count {n}");
        assert_eq!(
            got.conversation.last_turn_at,
            got.turns.last().map(|t| t.created_at)
        );
        reads += 1;
        if done {
            assert_eq!(n, 180);
            break;
        }
    }
    assert!(reads > 1);
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
        Err(StoreError::InvalidInput { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected InvalidInput {field}, got {other:?}"),
    }
}

#[tokio::test]
async fn bounds_and_missing_conversations() {
    let (_db, store) = store().await;
    let id = with_turns(&store, 3).await;
    assert_invalid(store.list_turns(id, TurnQuery::first(0)).await, "limit");
    assert_invalid(store.list_turns(id, TurnQuery::latest(501)).await, "limit");
    assert_invalid(store.list_turns(id, TurnQuery::after(-1, 5)).await, "after");
    assert_invalid(
        store.list_turns(id, TurnQuery::before(0, 5)).await,
        "before",
    );
    assert_invalid(
        store.get_conversation_with_last_turns(id, 501).await,
        "turns",
    );
    assert_eq!(
        seqs(&page(&store, id, TurnQuery::first(500)).await.turns),
        [1, 2, 3]
    );
    assert_eq!(
        store
            .get_conversation_with_last_turns(id, 500)
            .await
            .expect("500")
            .turns
            .len(),
        3
    );

    let gone = ConversationId::new();
    for query in [
        TurnQuery::first(5),
        TurnQuery::latest(5),
        TurnQuery::before(2, 5),
    ] {
        match store.list_turns(gone, query).await {
            Err(StoreError::NotFound {
                entity: Entity::Conversation,
                id,
            }) => assert_eq!(id, gone.to_string()),
            other => panic!("{query:?}: expected NotFound, got {other:?}"),
        }
    }
    match store.get_conversation_with_last_turns(gone, 10).await {
        Err(StoreError::NotFound {
            entity: Entity::Conversation,
            id,
        }) => assert_eq!(id, gone.to_string()),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
