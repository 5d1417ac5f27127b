// @generated automatically by Diesel CLI.

pub mod aura {
    diesel::table! {
        /// A question a run asks its user, and the answer: pending, then answered, then resumed (the run went on with it), or cancelled.
        aura.ask_user_requests (conversation_id, id) {
            /// The conversation the question is asked in.
            conversation_id -> Uuid,
            /// Request id: a UUIDv7 made by the application, unique within its conversation.
            id -> Uuid,
            /// The run that asked, in the same conversation; NULL when not asked by a run. Deleting the run deletes its requests.
            run_id -> Nullable<Uuid>,
            /// The question shown to the user.
            question -> Text,
            /// pending, answered, resumed or cancelled; answer is set exactly when answered or resumed.
            status -> Text,
            /// The user's answer; set exactly when status is answered or resumed.
            answer -> Nullable<Text>,
            /// When the question was asked.
            created_at -> Timestamptz,
            /// When the user answered; NULL before.
            answered_at -> Nullable<Timestamptz>,
            /// When the run resumed with the answer; NULL before.
            resumed_at -> Nullable<Timestamptz>,
            /// When the request stopped waiting (answered or cancelled); NULL while pending.
            resolved_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        /// A conversation between a user and the assistant: the root every other table hangs off (and the distribution key when sharded).
        aura.conversations (id) {
            /// Conversation id: a UUIDv7 made by the application.
            id -> Uuid,
            /// Title shown in lists; NULL until one is set or generated.
            title -> Nullable<Text>,
            /// Model the conversation talks to; empty when not chosen yet.
            model -> Text,
            /// When the conversation was created.
            started_at -> Timestamptz,
            /// When the conversation row last changed (title, model, counters).
            updated_at -> Timestamptz,
            /// Number of turns; the seq of the latest turn (turns are numbered 1, 2, ... without gaps).
            turn_count -> Int4,
            /// Sum of input_tokens over the conversation's turns.
            input_tokens -> Int8,
            /// Sum of output_tokens over the conversation's turns.
            output_tokens -> Int8,
            /// created_at of the latest turn; NULL while there is none.
            last_turn_at -> Nullable<Timestamptz>,
            /// Generated: COALESCE(last_turn_at, started_at), the key of the by-activity listing. Never written by the application.
            last_activity_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// One execution of the assistant on a conversation, from start to its end (stopped, completed or failed).
        aura.runs (conversation_id, id) {
            /// The conversation this run works on.
            conversation_id -> Uuid,
            /// Run id: a UUIDv7 made by the application, unique within its conversation.
            id -> Uuid,
            /// running, stopped, completed or failed; at most one run per conversation is running.
            status -> Text,
            /// When the run started.
            started_at -> Timestamptz,
            /// When the run left running; NULL while it runs.
            ended_at -> Nullable<Timestamptz>,
            /// Why the run ended (a stop request, an error message, a finish reason); NULL when not given.
            stop_reason -> Nullable<Text>,
        }
    }

    diesel::table! {
        /// One message of a conversation, in order: by the user, the assistant, the system or a tool.
        aura.turns (conversation_id, id) {
            /// The conversation this turn belongs to.
            conversation_id -> Uuid,
            /// Turn id: a UUIDv7 made by the application, unique within its conversation.
            id -> Uuid,
            /// Position in the conversation: 1 for the first turn, then without gaps.
            seq -> Int4,
            /// Who spoke: user, assistant, system or tool.
            role -> Text,
            /// The message text.
            content -> Text,
            /// Input (prompt) tokens spent on this turn; 0 when not metered.
            input_tokens -> Int4,
            /// Output (completion) tokens spent on this turn; 0 when not metered.
            output_tokens -> Int4,
            /// When the turn was stored.
            created_at -> Timestamptz,
            /// Structured data of the turn (tool calls and results, finish reason, producing model), as JSON; NULL when the turn has none.
            data -> Nullable<Jsonb>,
        }
    }

    diesel::joinable!(ask_user_requests -> conversations (conversation_id));
    diesel::joinable!(runs -> conversations (conversation_id));
    diesel::joinable!(turns -> conversations (conversation_id));

    diesel::allow_tables_to_appear_in_same_query!(ask_user_requests, conversations, runs, turns,);
}
