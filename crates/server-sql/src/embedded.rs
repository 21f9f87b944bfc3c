//! The embedded engine: Apache DataFusion in-process over Parquet and CSV files, one catalog whose
//! schemas are folders (`<root>/<schema>/<table>.parquet|csv`). Statements run with DataFusion's
//! own read-only options as a second guard, stream batch by batch into the row limits, and are
//! cancelled (their stream dropped, which stops every task of the plan) at the time limit.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use datafusion::{
    arrow::{
        datatypes::SchemaRef, json::WriterBuilder, json::writer::JsonArray,
        record_batch::RecordBatch,
    },
    catalog::MemorySchemaProvider,
    common::TableReference,
    execution::context::{SQLOptions, SessionConfig, SessionContext},
    parquet::arrow::ArrowWriter,
    prelude::{CsvReadOptions, ParquetReadOptions},
};
use futures::StreamExt;
use serde_json::Value;

use crate::{
    engine::{
        Collector, Column, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName, Written,
        check_target,
    },
    guard::{Flavor, WriteChecked, WriteKind},
};

/// DataFusion over a folder of files.
pub struct Embedded {
    ctx: SessionContext,
    catalog: String,
    root: std::path::PathBuf,
    /// Held by each write, so writes take turns.
    writing: tokio::sync::Mutex<()>,
}

impl Embedded {
    /// Registers every `<schema>/<table>.parquet` (or `.csv`, with a header row) under `root` as
    /// `<catalog>.<schema>.<table>`.
    pub async fn open(root: &Path, catalog: &str) -> anyhow::Result<Embedded> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(catalog, "public")
            .with_create_default_catalog_and_schema(true);
        let ctx = SessionContext::new_with_config(config);
        let catalog_provider = ctx
            .catalog(catalog)
            .ok_or_else(|| anyhow::anyhow!("the catalog {catalog} was not created"))?;
        let mut folders: Vec<_> = std::fs::read_dir(root)
            .map_err(|e| anyhow::anyhow!("read {}: {e}", root.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .collect();
        folders.sort_by_key(|e| e.file_name());
        for folder in folders {
            let schema = folder.file_name().to_string_lossy().to_lowercase();
            if schema.starts_with('.') {
                continue;
            }
            catalog_provider.register_schema(&schema, Arc::new(MemorySchemaProvider::new()))?;
            let mut files: Vec<_> = std::fs::read_dir(folder.path())?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            files.sort();
            for file in files {
                let (Some(stem), Some(ext)) = (file.file_stem(), file.extension()) else {
                    continue;
                };
                let name = TableReference::full(
                    catalog.to_owned(),
                    schema.clone(),
                    stem.to_string_lossy().to_lowercase(),
                );
                let path = file.to_string_lossy().into_owned();
                match ext.to_string_lossy().as_ref() {
                    "parquet" => {
                        ctx.register_parquet(name, &path, ParquetReadOptions::default())
                            .await?
                    }
                    "csv" => ctx.register_csv(name, &path, CsvReadOptions::new()).await?,
                    _ => {}
                }
            }
        }
        Ok(Embedded {
            ctx,
            catalog: catalog.to_owned(),
            root: root.to_owned(),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// The new contents of the target, as a query: the source for a new or replaced table, the
    /// source in the target's columns and types for an overwrite, the old rows and the source's
    /// for an append.
    fn contents_sql(write: &WriteChecked, target: &TableName, exists: bool) -> String {
        let source = format!("SELECT * FROM ({}) AS switchboard_source", write.source);
        let keep = format!("SELECT * FROM {}", target.quoted());
        match write.kind {
            WriteKind::Create | WriteKind::Replace => source,
            // UNION ALL takes the first branch's names and coerces the rows to its types.
            WriteKind::Overwrite => format!("{keep} WHERE false UNION ALL {source}"),
            WriteKind::Append if exists => format!("{keep} UNION ALL {source}"),
            WriteKind::Append => source,
        }
    }

    /// Runs `sql` and writes its rows to a new Parquet file at `path`; the rows written.
    async fn write_file(&self, sql: &str, path: &Path) -> Result<u64, SqlError> {
        let df = self.dataframe(sql).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(user_error)?;
        let file = std::fs::File::create(path)
            .map_err(|e| SqlError::Internal(format!("create {}: {e}", path.display())))?;
        let mut writer = ArrowWriter::try_new(file, schema, None)
            .map_err(|e| SqlError::Internal(format!("start the Parquet file: {e}")))?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(user_error)?;
            rows += batch.num_rows() as u64;
            writer
                .write(&batch)
                .map_err(|e| SqlError::Internal(format!("write the Parquet file: {e}")))?;
        }
        writer
            .close()
            .map_err(|e| SqlError::Internal(format!("finish the Parquet file: {e}")))?;
        Ok(rows)
    }

    /// The options every statement runs under: no DDL, no DML, no `SET`.
    fn read_only() -> SQLOptions {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
    }

    async fn dataframe(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame, SqlError> {
        self.ctx
            .sql_with_options(sql, Self::read_only())
            .await
            .map_err(user_error)
    }
}

/// A schema or table name the embedded engine keeps as a folder or file name: lower-case letters,
/// digits and `_`, not starting with a digit.
fn plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// DataFusion's errors: planning and SQL errors are the caller's; the rest are the engine's.
fn user_error(e: datafusion::error::DataFusionError) -> SqlError {
    use datafusion::error::DataFusionError as E;
    match e.find_root() {
        E::SQL(..) | E::Plan(..) | E::SchemaError(..) | E::NotImplemented(..) => {
            SqlError::Query(e.find_root().to_string())
        }
        E::ResourcesExhausted(..) => SqlError::Query(e.find_root().to_string()),
        _ => SqlError::Internal(e.to_string()),
    }
}

fn columns_of(schema: &SchemaRef) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
        })
        .collect()
}

/// A batch's rows as JSON values in column order (nulls kept, dates as ISO strings).
fn batch_rows(batch: &RecordBatch) -> Result<Vec<Vec<Value>>, SqlError> {
    let mut buffer = Vec::new();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buffer);
    writer
        .write(batch)
        .and_then(|_| writer.finish())
        .map_err(|e| SqlError::Internal(format!("encode rows: {e}")))?;
    drop(writer);
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&buffer)
        .map_err(|e| SqlError::Internal(format!("decode rows: {e}")))?;
    let names: Vec<&String> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name())
        .collect();
    Ok(objects
        .into_iter()
        .map(|mut object| {
            names
                .iter()
                .map(|name| object.remove(name.as_str()).unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}

#[async_trait]
impl SqlEngine for Embedded {
    fn name(&self) -> &'static str {
        "datafusion"
    }

    fn flavor(&self) -> Flavor {
        Flavor::Generic
    }

    fn default_catalog(&self) -> &str {
        &self.catalog
    }

    fn default_schema(&self) -> Option<&str> {
        Some("public")
    }

    async fn query(&self, sql: &str, run: &Run) -> Result<Rows, SqlError> {
        let limits = &run.limits;
        let work = async {
            let df = self.dataframe(sql).await?;
            let columns = columns_of(&Arc::new(df.schema().as_arrow().clone()));
            let mut stream = df.execute_stream().await.map_err(user_error)?;
            let mut rows = Collector::new(limits);
            'read: while let Some(batch) = stream.next().await {
                let batch = batch.map_err(user_error)?;
                for row in batch_rows(&batch)? {
                    if !rows.push(row) {
                        break 'read;
                    }
                }
            }
            // Dropping the stream stops whatever the plan was still computing.
            drop(stream);
            Ok(Rows {
                columns,
                rows: rows.rows,
                truncated: rows.truncated,
            })
        };
        tokio::time::timeout(limits.timeout, work)
            .await
            .map_err(|_| SqlError::Timeout(limits.timeout))?
    }

    async fn explain(&self, sql: &str, run: &Run) -> Result<Plan, SqlError> {
        let work = async {
            let df = self.dataframe(sql).await?;
            let physical = df
                .clone()
                .create_physical_plan()
                .await
                .map_err(user_error)?;
            // Statistics are computed synchronously (the context is not `Send`).
            let stats = {
                use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
                StatisticsContext::new()
                    .compute(physical.as_ref(), &StatisticsArgs::new())
                    .ok()
            };
            let plan = datafusion::physical_plan::displayable(physical.as_ref())
                .indent(true)
                .to_string();
            let logical = df.logical_plan().display_indent().to_string();
            Ok(Plan {
                plan: format!("logical plan:\n{logical}\nphysical plan:\n{plan}"),
                estimated_rows: stats
                    .as_ref()
                    .and_then(|s| s.num_rows.get_value().map(|n| *n as u64)),
                estimated_bytes: stats
                    .as_ref()
                    .and_then(|s| s.total_byte_size.get_value().map(|n| *n as u64)),
            })
        };
        tokio::time::timeout(run.limits.timeout, work)
            .await
            .map_err(|_| SqlError::Timeout(run.limits.timeout))?
    }

    async fn catalogs(&self, _run: &Run) -> Result<Vec<String>, SqlError> {
        let mut names = self.ctx.catalog_names();
        names.sort();
        Ok(names)
    }

    async fn schemas(&self, catalog: &str, _run: &Run) -> Result<Vec<String>, SqlError> {
        let provider = self
            .ctx
            .catalog(catalog)
            .ok_or_else(|| SqlError::Query(format!("no catalog named {catalog}")))?;
        let mut names: Vec<String> = provider
            .schema_names()
            .into_iter()
            .filter(|s| {
                s != "public"
                    || provider
                        .schema(s)
                        .is_some_and(|p| !p.table_names().is_empty())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    async fn tables(
        &self,
        catalog: &str,
        schema: Option<&str>,
        run: &Run,
    ) -> Result<Vec<TableInfo>, SqlError> {
        let provider = self
            .ctx
            .catalog(catalog)
            .ok_or_else(|| SqlError::Query(format!("no catalog named {catalog}")))?;
        let schemas = match schema {
            Some(s) => vec![s.to_owned()],
            None => self.schemas(catalog, run).await?,
        };
        let mut tables = Vec::new();
        for schema in schemas {
            if schema == "information_schema" {
                continue;
            }
            let Some(provider) = provider.schema(&schema) else {
                return Err(SqlError::Query(format!(
                    "no schema named {catalog}.{schema}"
                )));
            };
            let mut names = provider.table_names();
            names.sort();
            tables.extend(names.into_iter().map(|name| TableInfo {
                catalog: catalog.to_owned(),
                schema: schema.clone(),
                name,
                kind: "table".into(),
            }));
        }
        Ok(tables)
    }

    async fn columns(&self, table: &TableName, _run: &Run) -> Result<Vec<Column>, SqlError> {
        let reference = TableReference::full(
            table.catalog.clone(),
            table.schema.clone(),
            table.table.clone(),
        );
        let provider = self
            .ctx
            .table_provider(reference)
            .await
            .map_err(|_| SqlError::Query(format!("no table named {table}")))?;
        Ok(columns_of(&provider.schema()))
    }

    async fn write(
        &self,
        write: &WriteChecked,
        target: &TableName,
        run: &Run,
    ) -> Result<Written, SqlError> {
        if target.catalog != self.catalog {
            return Err(SqlError::Query(format!(
                "the embedded engine writes only to catalog {}, not {}",
                self.catalog, target.catalog
            )));
        }
        if !plain_name(&target.schema) || !plain_name(&target.table) {
            return Err(SqlError::Query(format!(
                "the embedded engine names tables with lower-case letters, digits and _ only, not {}.{}",
                target.schema, target.table
            )));
        }
        if !write.columns.is_empty() {
            return Err(SqlError::Query(
                "the embedded engine takes INSERT without a column list: select every column of the target, in order".into(),
            ));
        }
        let _turn = self.writing.lock().await;
        let reference = TableReference::full(
            self.catalog.clone(),
            target.schema.clone(),
            target.table.clone(),
        );
        let exists = self.ctx.table_exist(reference.clone()).unwrap_or(false);
        check_target(write.kind, exists, target)?;
        let folder = self.root.join(&target.schema);
        let work = async {
            std::fs::create_dir_all(&folder)
                .map_err(|e| SqlError::Internal(format!("create {}: {e}", folder.display())))?;
            let staging = folder.join(format!(
                ".{}.parquet.{}.partial",
                target.table,
                std::process::id()
            ));
            let sql = Self::contents_sql(write, target, exists);
            let written = self.write_file(&sql, &staging).await;
            let total = match written {
                Ok(total) => total,
                Err(e) => {
                    let _ = std::fs::remove_file(&staging);
                    return Err(e);
                }
            };
            let before = if write.kind == WriteKind::Append && exists {
                self.ctx
                    .table(reference.clone())
                    .await
                    .map_err(user_error)?
                    .count()
                    .await
                    .map_err(user_error)? as u64
            } else {
                0
            };
            Ok((staging, total, before))
        };
        let (staging, total, before) = tokio::time::timeout(run.limits.timeout, work)
            .await
            .map_err(|_| SqlError::Timeout(run.limits.timeout))??;
        // The new file takes the old one's place in one rename; a CSV table becomes Parquet.
        let file = folder.join(format!("{}.parquet", target.table));
        std::fs::rename(&staging, &file)
            .map_err(|e| SqlError::Internal(format!("move the new table into place: {e}")))?;
        let csv = folder.join(format!("{}.csv", target.table));
        if csv.exists() {
            let _ = std::fs::remove_file(&csv);
        }
        let catalog = self
            .ctx
            .catalog(&self.catalog)
            .ok_or_else(|| SqlError::Internal("the catalog is gone".into()))?;
        if catalog.schema(&target.schema).is_none() {
            catalog
                .register_schema(&target.schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(user_error)?;
        }
        let _ = self.ctx.deregister_table(reference.clone());
        self.ctx
            .register_parquet(
                reference,
                &file.to_string_lossy(),
                ParquetReadOptions::default(),
            )
            .await
            .map_err(user_error)?;
        tracing::info!(table = %target, user = %run.user, rows = total, "wrote a table");
        Ok(Written {
            rows: Some(total - before),
        })
    }
}
