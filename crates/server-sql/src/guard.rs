//! The read-only guard: every statement an agent sends to `run_query` or `explain_query` is parsed
//! (sqlparser) before any engine sees it, and only a single statement that reads may pass: a
//! query, `EXPLAIN` of one (never `EXPLAIN ANALYZE`, which runs it), `DESCRIBE` and `SHOW`.
//! Anything the parser cannot read is refused (fail closed), and the engine receives the statement
//! as the parser understood it, re-printed, never the original text, so a comment or a dialect
//! quirk cannot smuggle in a statement that was not checked. The guard also names the tables a
//! statement reads, for table-level access rules.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::{
    ast::{ObjectName, Query, SetExpr, Statement, TableObject, Visit, Visitor},
    dialect::{Dialect, GenericDialect, PostgreSqlDialect},
    parser::Parser,
};

/// Which SQL the engine speaks, for parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Trino, Presto and DataFusion: ANSI-like.
    Generic,
    /// PostgreSQL.
    Postgres,
}

/// A statement that passed: what to send to the engine, and the tables it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The statement re-printed from its parse tree.
    pub sql: String,
    /// The relations it reads, as written (`schema.table`, `catalog.schema.table`), lower case,
    /// without quotes, each once, in order of appearance; names of its own CTEs are not tables.
    pub tables: Vec<String>,
    /// Whether it is an `EXPLAIN`.
    pub explain: bool,
}

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("the text holds no SQL statement")]
    Empty,
    #[error(
        "send exactly one statement: this text holds {0} (a ';' separates statements, comments included)"
    )]
    Several(usize),
    #[error("the SQL does not parse, so it is refused: {0}")]
    Unparsed(String),
    #[error(
        "only statements that read are allowed here; {0} changes data, schema or session state (CREATE TABLE AS and INSERT go to the write tool, run_write, which needs approval)"
    )]
    Writes(String),
    #[error("EXPLAIN ANALYZE runs the statement; use EXPLAIN, which only plans it")]
    ExplainAnalyze,
    #[error("SELECT ... INTO creates a table; only plain queries are allowed here")]
    SelectInto,
    #[error("{0} locks rows; only plain queries are allowed here")]
    Locks(String),
    #[error("the statement is longer than {0} characters")]
    TooLong(usize),
    #[error(
        "the write tool runs CREATE TABLE ... AS SELECT, INSERT INTO ... SELECT and INSERT OVERWRITE ... SELECT; {0} is not one of them"
    )]
    NotAWrite(String),
}

/// Longest statement the guard reads.
pub const MAX_SQL_CHARS: usize = 100_000;

/// Checks that `sql` is one statement that only reads.
pub fn check_read_only(sql: &str, flavor: Flavor) -> Result<Checked, Refused> {
    let statement = parse_one(sql, flavor)?;
    let explain = match &statement {
        Statement::Query(_) => false,
        Statement::Explain {
            analyze, statement, ..
        } => {
            if *analyze {
                return Err(Refused::ExplainAnalyze);
            }
            if !matches!(**statement, Statement::Query(_)) {
                return Err(Refused::Writes(format!(
                    "EXPLAIN of {}",
                    keyword(statement)
                )));
            }
            true
        }
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowFunctions { .. } => false,
        other => return Err(Refused::Writes(keyword(other))),
    };
    let tables = reads_of(&statement)?;
    Ok(Checked {
        sql: statement.to_string(),
        tables,
        explain,
    })
}

/// Parses `sql` as exactly one statement (of any kind): the write tool's checks start here too.
pub fn parse_one(sql: &str, flavor: Flavor) -> Result<Statement, Refused> {
    if sql.chars().count() > MAX_SQL_CHARS {
        return Err(Refused::TooLong(MAX_SQL_CHARS));
    }
    let dialect: &dyn Dialect = match flavor {
        Flavor::Generic => &GenericDialect {},
        Flavor::Postgres => &PostgreSqlDialect {},
    };
    let mut statements = Parser::parse_sql(dialect, sql).map_err(|e| {
        Refused::Unparsed(
            e.to_string()
                .trim_start_matches("sql parser error: ")
                .to_owned(),
        )
    })?;
    match statements.len() {
        0 => Err(Refused::Empty),
        1 => Ok(statements.remove(0)),
        n => Err(Refused::Several(n)),
    }
}

/// The parts of a dotted name (`schema.table`, `"Odd Schema".t`): unquoted parts lower case,
/// quoted ones as written.
pub fn split_name(text: &str, flavor: Flavor) -> Result<Vec<String>, Refused> {
    let dialect: &dyn Dialect = match flavor {
        Flavor::Generic => &GenericDialect {},
        Flavor::Postgres => &PostgreSqlDialect {},
    };
    let mut parser = Parser::new(dialect)
        .try_with_sql(text)
        .map_err(|e| Refused::Unparsed(e.to_string()))?;
    let name = parser
        .parse_object_name(false)
        .map_err(|e| Refused::Unparsed(e.to_string()))?;
    if parser.peek_token() != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(Refused::Unparsed(format!("{text:?} is not a table name")));
    }
    Ok(name_parts(&name))
}

/// The parts of a parsed name: unquoted parts lower case, quoted ones as written.
fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_lowercase(),
            None => part.to_string(),
        })
        .collect()
}

/// What a statement of the write tool does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    /// `CREATE TABLE t AS SELECT ...`: a new table.
    Create,
    /// `CREATE OR REPLACE TABLE t AS SELECT ...`: a new table, or the old one's rows replaced.
    Replace,
    /// `INSERT INTO t SELECT ...`: rows added.
    Append,
    /// `INSERT OVERWRITE t SELECT ...`: every row replaced.
    Overwrite,
}

impl WriteKind {
    /// How the change reads in a sentence ("overwrite", "append to").
    pub fn verb(self) -> &'static str {
        match self {
            WriteKind::Create => "create",
            WriteKind::Replace => "create or replace",
            WriteKind::Append => "append to",
            WriteKind::Overwrite => "overwrite",
        }
    }
}

/// A statement the write tool may run: one `CREATE [OR REPLACE] TABLE ... AS SELECT`,
/// `INSERT INTO ... SELECT` or `INSERT OVERWRITE ... SELECT` whose query only reads.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteChecked {
    /// The statement re-printed from its parse tree.
    pub sql: String,
    pub kind: WriteKind,
    /// The target's name parts (unquoted parts lower case).
    pub target: Vec<String>,
    /// Columns named after the target (`INSERT INTO t (a, b) SELECT ...`), lower case.
    pub columns: Vec<String>,
    /// The query that makes the rows, re-printed.
    pub source: String,
    /// The relations the query reads, as [`Checked::tables`] names them.
    pub tables: Vec<String>,
}

/// Checks that `sql` is one statement the write tool runs (see [`WriteChecked`]).
pub fn check_write(sql: &str, flavor: Flavor) -> Result<WriteChecked, Refused> {
    let statement = parse_one(sql, flavor)?;
    let (kind, target, columns, source) = match &statement {
        Statement::CreateTable(create) => {
            let Some(query) = &create.query else {
                return Err(Refused::NotAWrite("CREATE TABLE without AS SELECT".into()));
            };
            if create.temporary
                || create.external
                || !create.columns.is_empty()
                || create.like.is_some()
                || create.clone.is_some()
                || create.location.is_some()
            {
                return Err(Refused::NotAWrite(
                    "CREATE TABLE with column definitions, LIKE, CLONE, LOCATION, TEMPORARY or EXTERNAL"
                        .into(),
                ));
            }
            let kind = if create.or_replace {
                WriteKind::Replace
            } else {
                WriteKind::Create
            };
            (kind, &create.name, Vec::new(), query)
        }
        Statement::Insert(insert) => {
            let TableObject::TableName(name) = &insert.table else {
                return Err(Refused::NotAWrite("INSERT into a table function".into()));
            };
            let Some(query) = &insert.source else {
                return Err(Refused::NotAWrite(
                    "INSERT without a query (use INSERT ... SELECT or VALUES)".into(),
                ));
            };
            if insert.on.is_some()
                || insert.returning.is_some()
                || !insert.assignments.is_empty()
                || insert.partitioned.is_some()
                || insert.or.is_some()
                || insert.replace_into
            {
                return Err(Refused::NotAWrite(
                    "INSERT with ON CONFLICT, RETURNING, SET, PARTITION or OR REPLACE".into(),
                ));
            }
            let kind = if insert.overwrite {
                WriteKind::Overwrite
            } else {
                WriteKind::Append
            };
            let columns = insert.columns.iter().map(relation_name).collect();
            (kind, name, columns, query)
        }
        other => return Err(Refused::NotAWrite(keyword(other))),
    };
    let tables = reads_of(source.as_ref())?;
    Ok(WriteChecked {
        sql: statement.to_string(),
        kind,
        target: name_parts(target),
        columns,
        source: source.to_string(),
        tables,
    })
}

/// A relation name as the guard reports it: its parts, unquoted and lower case, joined by dots.
pub fn relation_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| {
            part.as_ident()
                .map(|ident| ident.value.to_lowercase())
                .unwrap_or_else(|| part.to_string().to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The statement's first keywords, for messages (`DROP TABLE`, `INSERT`, `SET`).
fn keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                second.to_ascii_uppercase().as_str(),
                "TABLE" | "VIEW" | "SCHEMA" | "DATABASE" | "INDEX" | "FUNCTION" | "ROLE" | "USER"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "the statement".into(),
    }
}

/// The tables `node` reads (its own CTEs left out), or why it is refused: it writes somewhere.
fn reads_of<V: Visit>(node: &V) -> Result<Vec<String>, Refused> {
    let mut reads = Reads::default();
    if let ControlFlow::Break(refused) = node.visit(&mut reads) {
        return Err(refused);
    }
    let Reads { mut tables, ctes } = reads;
    tables.retain(|t| !ctes.contains(t));
    Ok(tables)
}

/// Walks a statement: collects the relations it reads and stops at anything that writes.
#[derive(Default)]
struct Reads {
    tables: Vec<String>,
    /// Names the statement's `WITH` clauses define.
    ctes: Vec<String>,
}

impl Visitor for Reads {
    type Break = Refused;

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refused> {
        let name = relation_name(relation);
        if !self.tables.contains(&name) {
            self.tables.push(name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refused> {
        if let Some(with) = &query.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|cte| cte.alias.name.value.to_lowercase()),
            );
        }
        if let Some(lock) = query.locks.first() {
            return ControlFlow::Break(Refused::Locks(lock.to_string().to_uppercase()));
        }
        body_reads_only(&query.body)
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Refused> {
        // Statements nested in a query (a data-modifying CTE, `INSERT` as a set expression).
        match statement {
            Statement::Query(_) | Statement::Explain { .. } => ControlFlow::Continue(()),
            Statement::ExplainTable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowFunctions { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(Refused::Writes(keyword(other))),
        }
    }
}

fn body_reads_only(body: &SetExpr) -> ControlFlow<Refused> {
    match body {
        SetExpr::Select(select) if select.into.is_some() => ControlFlow::Break(Refused::SelectInto),
        SetExpr::SetOperation { left, right, .. } => {
            body_reads_only(left)?;
            body_reads_only(right)
        }
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
            ControlFlow::Break(Refused::Writes(keyword(s)))
        }
        _ => ControlFlow::Continue(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Checked {
        check_read_only(sql, Flavor::Generic).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn refused(sql: &str) -> Refused {
        check_read_only(sql, Flavor::Generic).expect_err(sql)
    }

    #[test]
    fn queries_pass_and_name_the_tables_they_read() {
        let checked = ok(
            "SELECT c.region, sum(s.spend_usd) FROM ads.daily_spend s JOIN \"Ads\".Campaigns c USING (campaign_id) \
             WHERE s.day > DATE '2026-01-01' AND c.campaign_id IN (SELECT campaign_id FROM finance.ledger) GROUP BY 1",
        );
        assert_eq!(
            checked.tables,
            ["ads.daily_spend", "ads.campaigns", "finance.ledger"]
        );
        assert!(!checked.explain);
        let with = ok("WITH t AS (SELECT * FROM warehouse.ads.campaigns) SELECT count(*) FROM t");
        assert_eq!(with.tables, ["warehouse.ads.campaigns"]);
        assert!(ok("EXPLAIN SELECT 1").explain);
        ok("SHOW TABLES");
        ok("DESCRIBE ads.campaigns");
        ok("SELECT 1 UNION ALL SELECT 2");
    }

    #[test]
    fn writes_are_refused_with_what_they_are() {
        assert_eq!(
            refused("DROP TABLE ads.campaigns"),
            Refused::Writes("DROP TABLE".into())
        );
        assert_eq!(
            refused("delete from ads.campaigns"),
            Refused::Writes("DELETE".into())
        );
        assert_eq!(
            refused("INSERT INTO ads.campaigns SELECT * FROM ads.campaigns"),
            Refused::Writes("INSERT".into())
        );
        assert_eq!(
            refused("UPDATE t SET a = 1"),
            Refused::Writes("UPDATE".into())
        );
        assert_eq!(
            refused("CREATE TABLE x AS SELECT 1"),
            Refused::Writes("CREATE TABLE".into())
        );
        assert_eq!(
            refused("SET search_path = x"),
            Refused::Writes("SET".into())
        );
        assert_eq!(refused("EXPLAIN ANALYZE SELECT 1"), Refused::ExplainAnalyze);
        assert_eq!(
            refused("EXPLAIN DELETE FROM t"),
            Refused::Writes("EXPLAIN of DELETE".into())
        );
        assert_eq!(refused("SELECT * INTO copy FROM t"), Refused::SelectInto);
        assert!(matches!(
            refused("SELECT * FROM t FOR UPDATE"),
            Refused::Locks(_)
        ));
    }

    #[test]
    fn statements_cannot_hide_behind_separators_or_comments() {
        assert_eq!(refused("SELECT 1; DROP TABLE t"), Refused::Several(2));
        assert_eq!(refused("SELECT 1;DELETE FROM t;"), Refused::Several(2));
        assert_eq!(refused(""), Refused::Empty);
        assert_eq!(refused("-- nothing here"), Refused::Empty);
        // The comment is gone from what the engine gets: the checked statement alone runs.
        let hidden = ok("SELECT 1 /* ; DROP TABLE t */ -- ; DELETE FROM t");
        assert_eq!(hidden.sql, "SELECT 1");
        assert!(matches!(refused("SELEC 1"), Refused::Unparsed(_)));
        assert!(matches!(
            refused("SELECT 'unterminated"),
            Refused::Unparsed(_)
        ));
    }

    #[test]
    fn table_names_split_into_their_parts() {
        assert_eq!(
            split_name("Ads.Daily_Spend", Flavor::Generic).unwrap(),
            ["ads", "daily_spend"]
        );
        assert_eq!(
            split_name("w.\"Odd Schema\".t", Flavor::Generic).unwrap(),
            ["w", "Odd Schema", "t"]
        );
        assert!(split_name("ads.t; DROP TABLE x", Flavor::Generic).is_err());
        assert!(split_name("", Flavor::Generic).is_err());
    }

    #[test]
    fn the_write_tool_takes_table_writes_from_queries_only() {
        let create = check_write(
            "create table Ads.Top as select * from ads.campaigns where budget > 10",
            Flavor::Generic,
        )
        .unwrap();
        assert_eq!(create.kind, WriteKind::Create);
        assert_eq!(create.target, ["ads", "top"]);
        assert_eq!(create.tables, ["ads.campaigns"]);
        assert_eq!(
            create.source,
            "SELECT * FROM ads.campaigns WHERE budget > 10"
        );
        let replace = check_write(
            "CREATE OR REPLACE TABLE ads.top AS WITH c AS (SELECT * FROM finance.ledger) SELECT * FROM c",
            Flavor::Generic,
        )
        .unwrap();
        assert_eq!(replace.kind, WriteKind::Replace);
        assert_eq!(replace.tables, ["finance.ledger"]);
        let overwrite = check_write(
            "INSERT OVERWRITE TABLE ads.top SELECT * FROM ads.campaigns",
            Flavor::Generic,
        )
        .unwrap();
        assert_eq!(overwrite.kind, WriteKind::Overwrite);
        let append =
            check_write("INSERT INTO w.ads.top (a, B) SELECT 1, 2", Flavor::Generic).unwrap();
        assert_eq!(append.kind, WriteKind::Append);
        assert_eq!(append.target, ["w", "ads", "top"]);
        assert_eq!(append.columns, ["a", "b"]);
        assert!(append.tables.is_empty());

        for (sql, refused) in [
            ("DROP TABLE ads.top", "DROP TABLE is not one of them"),
            ("DELETE FROM ads.top", "DELETE is not one of them"),
            ("SELECT 1", "SELECT is not one of them"),
            ("CREATE TABLE t (a INT)", "CREATE TABLE without AS SELECT"),
            ("CREATE TEMPORARY TABLE t AS SELECT 1", "TEMPORARY"),
            (
                "INSERT INTO t SELECT 1; DROP TABLE t",
                "exactly one statement",
            ),
            ("INSERT INTO t SELECT * FROM s FOR UPDATE", "locks rows"),
        ] {
            let error = check_write(sql, Flavor::Generic)
                .expect_err(sql)
                .to_string();
            assert!(error.contains(refused), "{sql}: {error}");
        }
        let nested = "INSERT INTO t WITH gone AS (DELETE FROM s RETURNING *) SELECT * FROM gone";
        assert_eq!(
            check_write(nested, Flavor::Postgres),
            Err(Refused::Writes("DELETE".into()))
        );
    }

    #[test]
    fn postgres_data_modifying_ctes_are_refused() {
        let sql = "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone";
        assert_eq!(
            check_read_only(sql, Flavor::Postgres),
            Err(Refused::Writes("DELETE".into()))
        );
    }
}
