//! SQLSTATEs of diesel errors. diesel-async keeps the code only as a [`DatabaseErrorKind`]
//! for eight SQLSTATEs and drops it for every other one (`Unknown`); for those, the ones
//! callers branch on or a migration commonly meets are recognised by their server message
//! (lc_messages `C`, English). Anything else has no known SQLSTATE: `None`, never a guess.
//!
//! Under another `lc_messages` the messages are translated and none is recognised: the code
//! is `None`, never a wrong one (a test holds real translations against the tables), and a
//! pool warns once (see `crate::lc_messages`). Role bootstrap pins `lc_messages = 'C'`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Server messages (lc_messages `C`) of errors diesel-async reports as
/// `DatabaseErrorKind::Unknown` without their code, as (starts with, ends with, SQLSTATE).
const MESSAGE_SQLSTATES: [(&str, &str, &str); 16] = [
    ("deadlock detected", "", "40P01"),
    ("canceling statement due to statement timeout", "", "57014"),
    ("canceling statement due to user request", "", "57014"),
    ("canceling statement due to lock timeout", "", "55P03"),
    ("could not obtain lock on row", "", "55P03"),
    ("permission denied for ", "", "42501"),
    ("current transaction is aborted", "", "25P02"),
    ("value too long for type", "", "22001"),
    ("invalid input syntax for type", "", "22P02"),
    // What a migration commonly meets.
    ("syntax error at or near ", "", "42601"),
    ("relation \"", "\" does not exist", "42P01"),
    ("table \"", "\" does not exist", "42P01"),
    ("relation \"", "\" already exists", "42P07"),
    ("column \"", "\" does not exist", "42703"),
    ("function ", " does not exist", "42883"),
    ("", " cannot run inside a transaction block", "25001"),
];

/// The SQLSTATE behind a message diesel-async kept without its code, where
/// [`MESSAGE_SQLSTATES`] knows it.
pub(crate) fn of_message(message: &str) -> Option<&'static str> {
    MESSAGE_SQLSTATES
        .iter()
        .find(|(prefix, suffix, _)| message.starts_with(prefix) && message.ends_with(suffix))
        .map(|(_, _, code)| *code)
}

/// Messages (lc_messages `C`/English) of the FATAL errors a backend sends when it ends the
/// session mid-statement: `pg_terminate_backend` and shutdown (57P01), a crashed sibling
/// (57P02), the session timeouts (57P05, 25P03). diesel-async reports these as
/// `DatabaseErrorKind::Unknown` without their SQLSTATE, so the message is all there is.
const SESSION_ENDED_PREFIXES: &[&str] = &["terminating connection", "the database system is"];

/// True when a message without SQLSTATE says the server ended the session.
pub(crate) fn session_ended(message: &str) -> bool {
    SESSION_ENDED_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// Class 08 (connection exception) and the class 57 codes of a session the server ends or
/// refuses: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P05 idle
/// session timeout.
pub(crate) fn session_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05")
}

/// The SQLSTATE behind the kinds diesel-async maps; `None` for `Unknown` and the rest.
pub(crate) fn of_kind(kind: &DatabaseErrorKind) -> Option<&'static str> {
    Some(match kind {
        DatabaseErrorKind::UniqueViolation => "23505",
        DatabaseErrorKind::ForeignKeyViolation => "23503",
        DatabaseErrorKind::RestrictViolation => "23001",
        DatabaseErrorKind::ExclusionViolation => "23P01",
        DatabaseErrorKind::NotNullViolation => "23502",
        DatabaseErrorKind::CheckViolation => "23514",
        DatabaseErrorKind::SerializationFailure => "40001",
        DatabaseErrorKind::ReadOnlyTransaction => "25006",
        _ => return None,
    })
}

/// The SQLSTATE of a diesel error, from its kind or (for `Unknown`) its message.
pub(crate) fn of_diesel(err: &DieselError) -> Option<&'static str> {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => of_message(info.message()),
        DieselError::DatabaseError(kind, _) => of_kind(kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_map_to_their_codes_and_nothing_else_does() {
        for (message, code) in [
            ("relation \"missing_t\" does not exist", "42P01"),
            ("relation \"t\" already exists", "42P07"),
            (
                "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
                "25001",
            ),
            ("syntax error at or near \"CREAT\"", "42601"),
        ] {
            assert_eq!(of_message(message), Some(code), "{message}");
        }
        assert_eq!(of_message("relation \"t\" is not a table"), None);
        assert_eq!(of_message("something else entirely"), None);
    }

    #[test]
    fn session_sqlstates() {
        assert!(session_sqlstate("08006"));
        assert!(session_sqlstate("57P01"));
        assert!(
            !session_sqlstate("57014"),
            "a cancelled statement keeps its session"
        );
        assert!(!session_sqlstate("23505"));
    }

    /// Each English message the tables recognise, with its code, and its translations from
    /// PostgreSQL 15's message catalogs (de, fr, es, ja, ru; `%s` filled in). Under another
    /// `lc_messages` nothing is recognised: the SQLSTATE is missing, never a wrong one.
    const TRANSLATED: &[(&str, Option<&str>, &[&str])] = &[
        (
            "deadlock detected",
            Some("40P01"),
            &[
                "Verklemmung (Deadlock) entdeckt",
                "interblocage (deadlock) détecté",
                "se ha detectado un deadlock",
                "デッドロックを検出しました",
                "обнаружена взаимоблокировка",
            ],
        ),
        (
            "canceling statement due to statement timeout",
            Some("57014"),
            &[
                "storniere Anfrage wegen Zeitüberschreitung der Anfrage",
                "annulation de la requête à cause du délai écoulé pour l'exécution de l'instruction",
                "cancelando la sentencia debido a que se agotó el tiempo de espera de sentencias",
                "ステートメントのタイムアウトのためステートメントをキャンセルしています",
                "выполнение оператора отменено из-за тайм-аута",
            ],
        ),
        (
            "canceling statement due to lock timeout",
            Some("55P03"),
            &[
                "storniere Anfrage wegen Zeitüberschreitung einer Sperre",
                "annulation de la requête à cause du délai écoulé pour l'obtention des verrous",
                "выполнение оператора отменено из-за тайм-аута блокировки",
            ],
        ),
        (
            "permission denied for table turns",
            Some("42501"),
            &[
                "keine Berechtigung für Tabelle turns",
                "droit refusé pour la table turns",
                "permiso denegado a la tabla turns",
                "テーブル turns へのアクセスが拒否されました",
                "нет доступа к таблице turns",
            ],
        ),
        (
            "current transaction is aborted, commands ignored until end of transaction block",
            Some("25P02"),
            &[
                "aktuelle Transaktion wurde abgebrochen, Befehle werden bis zum Ende der Transaktion ignoriert",
                "transacción abortada, las órdenes serán ignoradas hasta el fin de bloque de transacción",
                "текущая транзакция прервана, команды до конца блока транзакции игнорируются",
            ],
        ),
        (
            "value too long for type character varying(5)",
            Some("22001"),
            &[
                "Wert zu lang für Typ character varying(5)",
                "valeur trop longue pour le type character varying(5)",
                "el valor es demasiado largo para el tipo character varying(5)",
                "値は型character varying(5)としては長すぎます",
            ],
        ),
        (
            "relation \"t\" does not exist",
            Some("42P01"),
            &[
                "Relation »t« existiert nicht",
                "la relation « t » n'existe pas",
                "no existe la relación «t»",
                "リレーション\"t\"は存在しません",
                "отношение \"t\" не существует",
            ],
        ),
        (
            "relation \"t\" already exists",
            Some("42P07"),
            &[
                "Relation »t« existiert bereits",
                "la relation « t » existe déjà",
                "la relación «t» ya existe",
                "リレーション\"t\"はすでに存在します",
                "отношение \"t\" уже существует",
            ],
        ),
        (
            "function f() does not exist",
            Some("42883"),
            &[
                "Funktion f() existiert nicht",
                "la fonction f() n'existe pas",
                "no existe la función f()",
                "関数f()は存在しません",
                "функция f() не существует",
            ],
        ),
        (
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
            Some("25001"),
            &[
                "CREATE INDEX CONCURRENTLY kann nicht in einem Transaktionsblock laufen",
                "CREATE INDEX CONCURRENTLY ne peut pas être exécuté dans un bloc de transaction",
                "CREATE INDEX CONCURRENTLY no puede ser ejecutado dentro de un bloque de transacción",
                "CREATE INDEX CONCURRENTLYはトランザクションブロックの内側では実行できません",
                "CREATE INDEX CONCURRENTLY не может выполняться внутри блока транзакции",
            ],
        ),
        (
            "terminating connection due to administrator command",
            None,
            &[
                "Verbindung wird abgebrochen aufgrund von Anweisung des Administrators",
                "arrêt des connexions suite à la demande de l'administrateur",
                "terminando la conexión debido a una orden del administrador",
                "管理者コマンドにより接続を終了しています",
                "закрытие подключения по команде администратора",
            ],
        ),
        (
            "the database system is shutting down",
            None,
            &[
                "das Datenbanksystem fährt herunter",
                "le système de base de données s'arrête",
                "el sistema de base de datos está apagándose",
                "データベースシステムはシャットダウンしています",
                "система баз данных останавливается",
            ],
        ),
    ];

    #[test]
    fn another_locale_loses_the_code_and_never_gives_a_wrong_one() {
        for (english, code, translations) in TRANSLATED {
            assert_eq!(of_message(english), *code, "{english}");
            assert_eq!(session_ended(english), code.is_none(), "{english}");
            for text in *translations {
                assert_eq!(of_message(text), None, "{text} (for {english:?})");
                assert!(!session_ended(text), "{text}");
            }
        }
    }
}
