//! What must hold in a database after faults, checked as the superuser.

/// Every conversation: turn_count = number of turns = highest seq (gap-free, seq being
/// unique), token sums and last_turn_at equal its turns'.
pub async fn assert_aggregates_match(admin: &tokio_postgres::Client) {
    let rows = admin
        .query(
            "SELECT c.id::text, c.turn_count::bigint, count(t.id), coalesce(max(t.seq), 0)::bigint, \
                    c.input_tokens, coalesce(sum(t.input_tokens), 0)::bigint, \
                    c.output_tokens, coalesce(sum(t.output_tokens), 0)::bigint, \
                    c.last_turn_at IS NOT DISTINCT FROM max(t.created_at) \
             FROM aura.conversations c LEFT JOIN aura.turns t ON t.conversation_id = c.id \
             GROUP BY c.id",
            &[],
        )
        .await
        .expect("aggregates");
    assert!(!rows.is_empty());
    for r in rows {
        let id: String = r.get(0);
        let (count, turns, max_seq): (i64, i64, i64) = (r.get(1), r.get(2), r.get(3));
        assert!(
            count == turns && turns == max_seq,
            "conversation {id}: turn_count {count}, {turns} turns, highest seq {max_seq}"
        );
        let (i, si, o, so): (i64, i64, i64, i64) = (r.get(4), r.get(5), r.get(6), r.get(7));
        assert!(
            i == si && o == so,
            "conversation {id}: tokens {i}/{o}, turns sum to {si}/{so}"
        );
        assert!(
            r.get::<_, bool>(8),
            "conversation {id}: last_turn_at is not its latest turn's"
        );
    }
}
