//! How aura-db recovers SQLSTATEs that diesel-async drops (see `src/sqlstate.rs`), through
//! the public API: `Error::from(diesel::result::Error)`, `Error::sqlstate`,
//! `Error::is_retryable` and `Error::Query::connection_lost`. No database needed.

use aura_db::Error;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

fn unknown(message: &str) -> Error {
    Error::from(DieselError::DatabaseError(
        DatabaseErrorKind::Unknown,
        Box::new(message.to_owned()),
    ))
}

/// True when the error says the server ended the session (a lost connection).
fn session_ended(message: &str) -> bool {
    matches!(
        unknown(message),
        Error::Query {
            connection_lost: true,
            ..
        }
    )
}

#[test]
fn a_session_the_server_ended_is_a_lost_connection() {
    for message in [
        "terminating connection due to administrator command",
        "terminating connection due to idle-session timeout",
        "the database system is shutting down",
    ] {
        assert!(session_ended(message), "{message}");
        let err = unknown(message);
        assert!(err.is_retryable(), "{message}");
    }
    let closed = Error::from(DieselError::DatabaseError(
        DatabaseErrorKind::ClosedConnection,
        Box::new("connection closed".to_owned()),
    ));
    assert!(closed.is_retryable());
}

#[test]
fn an_ordinary_failure_is_not_a_lost_connection() {
    let err = unknown("relation \"nope\" does not exist");
    assert!(!err.is_retryable(), "{err:?}");
    let err = Error::from(DieselError::DatabaseError(
        DatabaseErrorKind::CheckViolation,
        Box::new("new row violates check constraint".to_owned()),
    ));
    assert_eq!(err.sqlstate(), Some("23514"));
    assert!(!err.is_retryable());
}

#[test]
fn a_deadlock_keeps_its_sqlstate_and_is_retryable() {
    let err = unknown("deadlock detected");
    assert_eq!(err.sqlstate(), Some("40P01"));
    assert!(err.is_retryable());
    assert!(matches!(
        err,
        Error::Query {
            connection_lost: false,
            ..
        }
    ));
}

#[test]
fn codes_dropped_by_diesel_async_come_back_from_the_message() {
    for (message, code) in [
        ("canceling statement due to statement timeout", "57014"),
        ("canceling statement due to lock timeout", "55P03"),
        ("permission denied for table turns", "42501"),
        (
            "current transaction is aborted, commands ignored until end of transaction block",
            "25P02",
        ),
        ("value too long for type character varying(5)", "22001"),
    ] {
        let err = unknown(message);
        assert_eq!(err.sqlstate(), Some(code), "{message}");
        assert!(!err.is_retryable(), "{message}");
    }
    assert_eq!(unknown("something else entirely").sqlstate(), None);
}

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
        assert_eq!(unknown(message).sqlstate(), Some(code), "{message}");
    }
    assert_eq!(unknown("relation \"t\" is not a table").sqlstate(), None);
    assert_eq!(unknown("something else entirely").sqlstate(), None);
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
        assert_eq!(unknown(english).sqlstate(), *code, "{english}");
        assert_eq!(session_ended(english), code.is_none(), "{english}");
        for text in *translations {
            assert_eq!(unknown(text).sqlstate(), None, "{text} (for {english:?})");
            assert!(!session_ended(text), "{text}");
        }
    }
}
