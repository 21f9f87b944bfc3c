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
    prelude::{CsvReadOptions, ParquetReadOptions},
};
use futures::StreamExt;
use serde_json::Value;

use crate::{
    engine::{Collector, Column, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName},
    guard::Flavor,
};

/// DataFusion over a folder of files.
pub struct Embedded {
    ctx: SessionContext,
    catalog: String,
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
        })
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
}
