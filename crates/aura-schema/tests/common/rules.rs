//! The schema rules, checked over a live database's catalog: what every migration must keep.
//!
//! - Placement: every table, view, sequence of the application is in schema `aura` (objects
//!   of extensions aside), owned by the migrate role (default privileges, which give the app
//!   role its DML rights, only cover objects the migrate role creates).
//! - Documentation: every table and every column has a `COMMENT ON` (they become the docs of
//!   schema.rs).
//! - Foreign keys: each is covered by a valid, non-partial index whose leading columns are
//!   the foreign key's columns (a primary key or unique index counts), and has an explicit
//!   `ON DELETE CASCADE` or `ON DELETE RESTRICT`. `NO ACTION` is refused because it is what
//!   Postgres gives a foreign key that says nothing: we want the author to have decided.
//! - Citus (distribution by conversation id): every table has the distribution column
//!   (`id` in `conversations`, `conversation_id` elsewhere), `NOT NULL`; it is the first
//!   column of every primary key and unique index (partial ones included); every foreign
//!   key has it first on both sides; no `ON DELETE SET NULL / SET DEFAULT`; no sequences,
//!   serial or identity columns (ids are UUIDv7 from the application).
//!
//! [`check`] returns every violation, so a test can assert both "none on main" and "this
//! bad migration breaks exactly that rule".

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use tokio_postgres::Client;

/// What the rules are checked against.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The application's schema.
    pub schema: String,
    /// The role that must own every table.
    pub owner: String,
    /// The table whose primary key is the distribution key.
    pub root_table: String,
    /// That table's distribution column.
    pub root_key: String,
    /// The distribution column of every other table.
    pub distribution_column: String,
    /// Tables the rules do not apply to (the migration runner's bookkeeping).
    pub ignore_tables: Vec<String>,
}

impl Rules {
    /// Aura's rules: schema `aura` owned by `aura_migrate`, distributed by conversation id.
    pub fn aura() -> Rules {
        Rules {
            schema: "aura".to_owned(),
            owner: "aura_migrate".to_owned(),
            root_table: "conversations".to_owned(),
            root_key: "id".to_owned(),
            distribution_column: "conversation_id".to_owned(),
            ignore_tables: vec![
                aura_db::DIESEL_TABLE.to_owned(),
                aura_db::CHECKSUM_TABLE.to_owned(),
            ],
        }
    }

    fn dist_column(&self, table: &str) -> &str {
        if table == self.root_table {
            &self.root_key
        } else {
            &self.distribution_column
        }
    }
}

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// An application object outside the schema.
    OutsideSchema,
    /// A table not owned by the migrate role.
    Owner,
    /// A table without a comment.
    TableComment,
    /// A column without a comment.
    ColumnComment,
    /// A foreign key no index covers.
    ForeignKeyIndex,
    /// A foreign key without an explicit ON DELETE CASCADE / RESTRICT.
    ForeignKeyOnDelete,
    /// A foreign key with ON DELETE SET NULL / SET DEFAULT (refused by Citus).
    SetNullOrDefault,
    /// A table without the distribution column.
    DistributionColumn,
    /// A nullable distribution column.
    DistributionNotNull,
    /// A table without a primary key, or one not led by the distribution column.
    PrimaryKey,
    /// A unique index not led by the distribution column.
    UniqueIndex,
    /// A foreign key not led by the distribution column on both sides.
    ForeignKeyDistribution,
    /// A sequence, serial or identity column.
    Sequence,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The object, e.g. `aura.turns` or `turns_conversation_id_fkey`.
    pub object: String,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}: {}", self.rule, self.object, self.detail)
    }
}

struct Table {
    oid: u32,
    name: String,
    owner: String,
    comment: Option<String>,
}

struct Column {
    name: String,
    not_null: bool,
    identity: String,
    default: Option<String>,
    comment: Option<String>,
}

struct Index {
    name: String,
    table: u32,
    unique: bool,
    primary: bool,
    partial: bool,
    valid: bool,
    /// Key columns (attnums; 0 for an expression).
    keys: Vec<i16>,
}

struct ForeignKey {
    name: String,
    table: u32,
    columns: Vec<i16>,
    ref_table: u32,
    ref_table_name: String,
    ref_columns: Vec<i16>,
    on_delete: String,
}

/// Every violation of `rules` in the database `client` is connected to, sorted.
pub async fn check(client: &Client, rules: &Rules) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut push = |rule, object: &str, detail: String| {
        out.push(Violation {
            rule,
            object: object.to_owned(),
            detail,
        });
    };
    let schema = rules.schema.as_str();

    // Application objects elsewhere (extension objects and system schemas aside).
    for row in query(
        client,
        "SELECT n.nspname::text, c.relname::text, c.relkind::text
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND n.nspname <> $1
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype = 'e')",
        &[&schema],
    )
    .await
    {
        let (nsp, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        push(
            Rule::OutsideSchema,
            &format!("{nsp}.{name}"),
            format!("relation of kind {kind:?} outside schema {schema}"),
        );
    }

    for row in query(
        client,
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'S'",
        &[&schema],
    )
    .await
    {
        let name: String = row.get(0);
        push(
            Rule::Sequence,
            &format!("{schema}.{name}"),
            "a sequence (ids are UUIDv7 made by the application)".to_owned(),
        );
    }

    let tables: Vec<Table> = query(
        client,
        "SELECT c.oid, c.relname::text, pg_get_userbyid(c.relowner)::text,
                obj_description(c.oid, 'pg_class')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 2",
        &[&schema],
    )
    .await
    .iter()
    .map(|r| Table {
        oid: r.get(0),
        name: r.get(1),
        owner: r.get(2),
        comment: r.get(3),
    })
    .filter(|t| !rules.ignore_tables.contains(&t.name))
    .collect();
    let names: HashMap<u32, &str> = tables.iter().map(|t| (t.oid, t.name.as_str())).collect();

    let mut columns: HashMap<u32, Vec<(i16, Column)>> = HashMap::new();
    for r in query(
        client,
        "SELECT a.attrelid, a.attnum, a.attname::text, a.attnotnull, a.attidentity::text,
                pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum)
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0
           AND NOT a.attisdropped
         ORDER BY a.attrelid, a.attnum",
        &[&schema],
    )
    .await
    {
        columns.entry(r.get(0)).or_default().push((
            r.get(1),
            Column {
                name: r.get(2),
                not_null: r.get(3),
                identity: r.get(4),
                default: r.get(5),
                comment: r.get(6),
            },
        ));
    }

    let indexes: Vec<Index> = query(
        client,
        "SELECT ic.relname::text, i.indrelid, i.indisunique, i.indisprimary,
                i.indpred IS NOT NULL, i.indisvalid,
                (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts]
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = ic.relnamespace
         WHERE n.nspname = $1",
        &[&schema],
    )
    .await
    .iter()
    .map(|r| Index {
        name: r.get(0),
        table: r.get(1),
        unique: r.get(2),
        primary: r.get(3),
        partial: r.get(4),
        valid: r.get(5),
        keys: r.get(6),
    })
    .collect();

    let fks: Vec<ForeignKey> = query(
        client,
        "SELECT con.conname::text, con.conrelid, con.conkey, con.confrelid, fc.relname::text,
                con.confkey, con.confdeltype::text
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class fc ON fc.oid = con.confrelid
         WHERE n.nspname = $1 AND con.contype = 'f'
         ORDER BY 1",
        &[&schema],
    )
    .await
    .iter()
    .map(|r| ForeignKey {
        name: r.get(0),
        table: r.get(1),
        columns: r.get(2),
        ref_table: r.get(3),
        ref_table_name: r.get(4),
        ref_columns: r.get(5),
        on_delete: r.get(6),
    })
    .collect();

    let column_name = |table: u32, attnum: i16| -> String {
        columns
            .get(&table)
            .and_then(|cs| cs.iter().find(|(n, _)| *n == attnum))
            .map(|(_, c)| c.name.clone())
            .unwrap_or_else(|| format!("<expression {attnum}>"))
    };

    for table in &tables {
        let object = format!("{schema}.{}", table.name);
        if table.owner != rules.owner {
            push(
                Rule::Owner,
                &object,
                format!("owned by {}, not {}", table.owner, rules.owner),
            );
        }
        if table.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
            push(
                Rule::TableComment,
                &object,
                "no COMMENT ON TABLE".to_owned(),
            );
        }
        let cols = columns.get(&table.oid).map(Vec::as_slice).unwrap_or(&[]);
        for (_, col) in cols {
            let col_object = format!("{object}.{}", col.name);
            if col.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                push(
                    Rule::ColumnComment,
                    &col_object,
                    "no COMMENT ON COLUMN".to_owned(),
                );
            }
            if !col.identity.is_empty() {
                push(
                    Rule::Sequence,
                    &col_object,
                    "an identity column (ids are UUIDv7 made by the application)".to_owned(),
                );
            }
            if col
                .default
                .as_deref()
                .is_some_and(|d| d.contains("nextval("))
            {
                push(
                    Rule::Sequence,
                    &col_object,
                    "a serial column (default nextval)".to_owned(),
                );
            }
        }

        let dist = rules.dist_column(&table.name);
        match cols.iter().find(|(_, c)| c.name == dist) {
            None => push(
                Rule::DistributionColumn,
                &object,
                format!("has no distribution column {dist}"),
            ),
            Some((_, c)) if !c.not_null => push(
                Rule::DistributionNotNull,
                &format!("{object}.{dist}"),
                "the distribution column is nullable".to_owned(),
            ),
            Some(_) => {}
        }

        let table_indexes: Vec<&Index> = indexes.iter().filter(|i| i.table == table.oid).collect();
        match table_indexes.iter().find(|i| i.primary) {
            None => push(Rule::PrimaryKey, &object, "has no primary key".to_owned()),
            Some(pk) => {
                let first = pk.keys.first().map(|k| column_name(table.oid, *k));
                if first.as_deref() != Some(dist) {
                    push(
                        Rule::PrimaryKey,
                        &pk.name,
                        format!("primary key of {object} does not start with {dist}"),
                    );
                }
            }
        }
        for index in table_indexes.iter().filter(|i| i.unique && !i.primary) {
            let first = index.keys.first().map(|k| column_name(table.oid, *k));
            if first.as_deref() != Some(dist) {
                push(
                    Rule::UniqueIndex,
                    &index.name,
                    format!("unique index on {object} does not start with {dist}"),
                );
            }
        }

        for fk in fks.iter().filter(|f| f.table == table.oid) {
            match fk.on_delete.as_str() {
                "c" | "r" => {}
                "n" | "d" => push(
                    Rule::SetNullOrDefault,
                    &fk.name,
                    "ON DELETE SET NULL / SET DEFAULT (Citus refuses them)".to_owned(),
                ),
                _ => push(
                    Rule::ForeignKeyOnDelete,
                    &fk.name,
                    "no explicit ON DELETE CASCADE or RESTRICT (NO ACTION is the unconsidered \
                     default)"
                        .to_owned(),
                ),
            }

            let ref_dist = rules.dist_column(&fk.ref_table_name);
            let local_first = fk.columns.first().map(|k| column_name(table.oid, *k));
            let ref_first = fk.ref_columns.first().map(|k| {
                if names.contains_key(&fk.ref_table) {
                    column_name(fk.ref_table, *k)
                } else {
                    format!("<column {k} of {}>", fk.ref_table_name)
                }
            });
            if local_first.as_deref() != Some(dist) || ref_first.as_deref() != Some(ref_dist) {
                push(
                    Rule::ForeignKeyDistribution,
                    &fk.name,
                    format!(
                        "must start with {dist} -> {}.{ref_dist} (starts with {} -> {})",
                        fk.ref_table_name,
                        local_first.unwrap_or_default(),
                        ref_first.unwrap_or_default()
                    ),
                );
            }

            let wanted: BTreeSet<i16> = fk.columns.iter().copied().collect();
            let covered = table_indexes.iter().any(|i| {
                i.valid
                    && !i.partial
                    && i.keys.len() >= wanted.len()
                    && i.keys[..wanted.len()]
                        .iter()
                        .copied()
                        .collect::<BTreeSet<_>>()
                        == wanted
            });
            if !covered {
                let cols: Vec<String> = fk
                    .columns
                    .iter()
                    .map(|k| column_name(table.oid, *k))
                    .collect();
                push(
                    Rule::ForeignKeyIndex,
                    &fk.name,
                    format!(
                        "no index of {object} starts with ({}) (partial indexes do not count)",
                        cols.join(", ")
                    ),
                );
            }
        }
    }

    out.sort_by(|a, b| (a.rule, &a.object).cmp(&(b.rule, &b.object)));
    out
}

async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<tokio_postgres::Row> {
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("catalog query failed: {}\n{sql}", super::pg_error(&e)))
}
