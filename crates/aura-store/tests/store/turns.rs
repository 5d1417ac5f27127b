//! append_turn: gap-free seq and exact aggregates under concurrency.

use std::collections::HashMap;
use std::sync::Arc;

use aura_store::{ConversationId, ConversationStore, TurnKey, TurnRole, TurnStore};

use crate::common::{append_in_background, conversation, scalar, store, turn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_appends_number_the_turns_1_to_64() {
    let (db, store) = store().await;
    let id = conversation(&store).await.id;

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let content = format!("turn {i}");
                store.append_turn(id, turn(&content, i, 2 * i)).await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("task").expect("append").seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>());

    let got = store.get_conversation(id).await.expect("get");
    let c = &got.conversation;
    assert_eq!(c.turn_count, 64);
    assert_eq!(
        got.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
        (1..=64).collect::<Vec<_>>()
    );
    let input: i64 = (0..64).sum();
    assert_eq!(c.input_tokens, input);
    assert_eq!(c.output_tokens, 2 * input);
    let last = got.turns.last().expect("64 turns");
    assert_eq!(c.last_turn_at, Some(last.created_at));
    assert_eq!(c.last_activity_at, last.created_at);

    // The database agrees, independently of the store's reads.
    for (sql, expected) in [
        (
            "SELECT count(*) FROM aura.turns WHERE conversation_id = $1::text::uuid",
            64,
        ),
        (
            "SELECT count(DISTINCT seq) FILTER (WHERE seq BETWEEN 1 AND 64) FROM aura.turns \
             WHERE conversation_id = $1::text::uuid",
            64,
        ),
        (
            "SELECT sum(input_tokens)::bigint FROM aura.turns WHERE conversation_id = $1::text::uuid",
            input,
        ),
    ] {
        assert_eq!(scalar(&db, sql, id).await, expected, "{sql}");
    }
}

/// 16 tasks each append one turn to each of 100 conversations, in different orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_tasks_over_a_hundred_conversations_keep_each_one_exact() {
    let (db, store) = store().await;
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(conversation(&store).await.id);
    }
    let ids = Arc::new(ids);
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            let ids = Arc::clone(&ids);
            tokio::spawn(async move {
                for k in 0..ids.len() {
                    // Task t starts at conversation 7t and strides through all of them.
                    let id = ids[(k + 7 * task) % ids.len()];
                    store
                        .append_turn(id, turn("hello", task as i32 + 1, 1))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }

    let client = db.superuser_client().await;
    let rows = client
        .query(
            "SELECT c.id::text, c.turn_count::bigint, c.input_tokens, c.output_tokens, \
                    count(t.id), coalesce(sum(t.input_tokens), 0)::bigint, \
                    coalesce(sum(t.output_tokens), 0)::bigint, \
                    count(DISTINCT t.seq), coalesce(min(t.seq), 0)::bigint, \
                    coalesce(max(t.seq), 0)::bigint, \
                    bool_and(c.last_turn_at = (SELECT max(created_at) FROM aura.turns x \
                                               WHERE x.conversation_id = c.id)) \
               FROM aura.conversations c LEFT JOIN aura.turns t ON t.conversation_id = c.id \
              GROUP BY c.id",
            &[],
        )
        .await
        .expect("aggregate query");
    assert_eq!(rows.len(), 100);
    let per_task_input: i64 = (1..=16).sum();
    for row in rows {
        let id: String = row.get(0);
        let numbers: Vec<i64> = (1..10).map(|i| row.get(i)).collect();
        assert_eq!(
            numbers,
            [16, per_task_input, 16, 16, per_task_input, 16, 16, 1, 16],
            "conversation {id}: turn_count, input, output, turns, sums, distinct seqs, min, max"
        );
        assert!(
            row.get::<_, bool>(10),
            "{id}: last_turn_at is the last turn's time"
        );
    }
}

/// While appends run, every get_conversation is one moment's state: the turns are exactly
/// 1..=turn_count and the totals are their sums.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_conversation_is_consistent_while_turns_are_appended() {
    let (_db, store) = store().await;
    let id = conversation(&store).await.id;
    let writers = append_in_background(&store, id, 4, 40);
    let mut reads = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let got = store.get_conversation(id).await.expect("get");
        check_consistent(id, &got);
        reads += 1;
        if done {
            assert_eq!(got.conversation.turn_count, 160);
            break;
        }
    }
    assert!(reads > 1);
}

fn check_consistent(id: ConversationId, got: &aura_store::ConversationWithTurns) {
    let c = &got.conversation;
    assert_eq!(c.id, id);
    let n = c.turn_count as usize;
    assert_eq!(got.turns.len(), n, "turns vs turn_count");
    for (i, t) in got.turns.iter().enumerate() {
        assert_eq!(t.seq as usize, i + 1);
    }
    let input: i64 = got.turns.iter().map(|t| i64::from(t.input_tokens)).sum();
    let output: i64 = got.turns.iter().map(|t| i64::from(t.output_tokens)).sum();
    assert_eq!((c.input_tokens, c.output_tokens), (input, output));
    assert_eq!(c.last_turn_at, got.turns.last().map(|t| t.created_at));
}

#[tokio::test]
async fn an_appended_turn_is_what_was_stored() {
    let (_db, store) = store().await;
    let created = conversation(&store).await;
    assert_eq!(created.turn_count, 0);
    assert_eq!(created.last_turn_at, None);
    assert_eq!(created.last_activity_at, created.started_at);

    let empty = store.get_conversation(created.id).await.expect("get");
    assert_eq!(empty.conversation, created);
    assert!(empty.turns.is_empty());

    let content = "ünïcode ✓ and 'quotes'";
    let appended = store
        .append_turn(
            created.id,
            aura_store::TurnDraft {
                id: None,
                role: TurnRole::Assistant,
                content,
                input_tokens: 7,
                output_tokens: 0,
                data: None,
            },
        )
        .await
        .expect("append");
    assert_eq!(appended.seq, 1);
    let stored = store
        .get_turn(TurnKey::new(created.id, appended.id))
        .await
        .expect("get_turn");
    assert_eq!(stored, appended);
    assert_eq!(appended.id.as_uuid().get_version_num(), 7);

    let after = store.get_conversation(created.id).await.expect("get");
    assert_eq!(after.turns, vec![appended.clone()]);
    assert_eq!(after.conversation.last_turn_at, Some(appended.created_at));
    assert_eq!(after.conversation.updated_at, appended.created_at);
    let by_seq: HashMap<i32, _> = after.turns.iter().map(|t| (t.seq, t.id)).collect();
    assert_eq!(by_seq.get(&1), Some(&appended.id));
}
