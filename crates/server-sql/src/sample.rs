//! The sample warehouse of the embedded default: a deterministic, generated ads and finance
//! dataset written as Parquet (`<dir>/<schema>/<table>.parquet`) on first run, so `switchboard
//! up` answers real queries with no services. The same seed always gives the same rows; at full
//! scale `ads.daily_spend` holds 2,000 campaigns × 540 days = 1,080,000 rows.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use datafusion::{
    arrow::{
        array::{
            ArrayBuilder, ArrayRef, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
        },
        datatypes::{DataType, Field, Schema, SchemaRef},
        record_batch::RecordBatch,
    },
    parquet::arrow::ArrowWriter,
};

/// Bump when the generated data changes, so older copies are regenerated.
const VERSION: &str = "1";
/// Written last: a directory without it is incomplete.
const MARKER: &str = ".switchboard-sample";
/// Rows per Parquet row group and Arrow batch.
const BATCH_ROWS: usize = 65_536;

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub campaigns: u32,
    pub days: u32,
    pub ledger_entries: u32,
}

impl Scale {
    /// The warehouse `switchboard up` serves: over a million rows of daily spend.
    pub const FULL: Scale = Scale {
        campaigns: 2_000,
        days: 540,
        ledger_entries: 100_000,
    };
    /// A small warehouse for tests.
    pub const SMALL: Scale = Scale {
        campaigns: 40,
        days: 30,
        ledger_entries: 500,
    };

    fn tag(&self) -> String {
        format!(
            "{VERSION}:{}:{}:{}",
            self.campaigns, self.days, self.ledger_entries
        )
    }
}

const REGIONS: &[&str] = &[
    "na-east",
    "na-west",
    "latam",
    "emea-north",
    "emea-south",
    "apac-north",
    "apac-south",
    "anz",
];
const OBJECTIVES: &[&str] = &["awareness", "consideration", "conversions", "app-installs"];
const ADVERTISERS: &[&str] = &[
    "Acme Outdoor",
    "Birch & Pine Home",
    "Cobalt Cycles",
    "Dune Coffee Roasters",
    "Ember Kitchenware",
    "Fjord Travel",
    "Gilded Fox Jewelry",
    "Harbor Pet Supply",
    "Indigo Yoga",
    "Juniper Garden Co",
    "Kestrel Sportswear",
    "Lumen Lighting",
    "Maple Street Books",
    "Nimbus Audio",
    "Orchard Skincare",
    "Pebble Toys",
    "Quill Stationery",
    "Rove Luggage",
    "Sable Fashion",
    "Tidal Swimwear",
];
const ACCOUNTS: &[&str] = &[
    "4000 ads revenue",
    "4100 partner revenue",
    "5000 hosting",
    "5100 data licensing",
    "6000 salaries",
    "6100 contractors",
    "6200 travel",
    "6300 marketing",
];
const COST_CENTERS: &[&str] = &[
    "ads-eng",
    "data-eng",
    "finance",
    "sales",
    "marketing",
    "infra",
];

/// 2025-06-01 as days since the Unix epoch.
const FIRST_DAY: i32 = 20_240;

/// SplitMix64: a tiny, fixed pseudo-random sequence (the data must never change with a crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Makes sure `dir` holds the sample warehouse at `scale`, generating it if it is missing,
/// incomplete or from another version; returns the tables' files by `schema.table`.
pub fn ensure(dir: &Path, scale: Scale) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let marker = dir.join(MARKER);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(scale.tag().as_str()) {
        let started = std::time::Instant::now();
        // Built beside the target and swapped in whole, so a crash leaves no half warehouse.
        let building = dir.with_extension("building");
        let _ = std::fs::remove_dir_all(&building);
        generate(&building, scale)?;
        std::fs::write(building.join(MARKER), scale.tag())?;
        let _ = std::fs::remove_dir_all(dir);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&building, dir)?;
        tracing::info!(dir = %dir.display(), elapsed_ms = started.elapsed().as_millis() as u64, "generated the sample warehouse");
    }
    Ok(TABLES
        .iter()
        .map(|(schema, table)| {
            (
                format!("{schema}.{table}"),
                dir.join(schema).join(format!("{table}.parquet")),
            )
        })
        .collect())
}

const TABLES: &[(&str, &str)] = &[
    ("ads", "campaigns"),
    ("ads", "daily_spend"),
    ("ads", "revenue_by_region"),
    ("finance", "ledger"),
];

/// A Parquet file written batch by batch.
struct Table {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
}

impl Table {
    fn create(dir: &Path, schema: &str, table: &str, fields: Vec<Field>) -> anyhow::Result<Table> {
        let folder = dir.join(schema);
        std::fs::create_dir_all(&folder)?;
        let schema = Arc::new(Schema::new(fields));
        let file = File::create(folder.join(format!("{table}.parquet")))?;
        Ok(Table {
            writer: ArrowWriter::try_new(file, schema.clone(), None)?,
            schema,
        })
    }

    fn write(&mut self, columns: Vec<ArrayRef>) -> anyhow::Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        self.writer.close()?;
        Ok(())
    }
}

struct Campaign {
    id: i64,
    region: &'static str,
    budget: f64,
    ctr: f64,
    cpm: f64,
}

fn generate(dir: &Path, scale: Scale) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(0x5EED_0001);

    // ads.campaigns
    let mut campaigns = Vec::with_capacity(scale.campaigns as usize);
    let mut table = Table::create(
        dir,
        "ads",
        "campaigns",
        vec![
            Field::new("campaign_id", DataType::Int64, false),
            Field::new("advertiser", DataType::Utf8, false),
            Field::new("objective", DataType::Utf8, false),
            Field::new("region", DataType::Utf8, false),
            Field::new("start_date", DataType::Date32, false),
            Field::new("daily_budget_usd", DataType::Float64, false),
        ],
    )?;
    let (mut id, mut advertiser, mut objective, mut region, mut start, mut budget) = (
        Int64Builder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        Date32Builder::new(),
        Float64Builder::new(),
    );
    for n in 1..=scale.campaigns as i64 {
        let c = Campaign {
            id: n,
            region: rng.pick(REGIONS),
            budget: cents(50.0 + rng.unit() * 4950.0),
            ctr: 0.002 + rng.unit() * 0.02,
            cpm: 2.0 + rng.unit() * 18.0,
        };
        id.append_value(c.id);
        advertiser.append_value(rng.pick(ADVERTISERS));
        objective.append_value(rng.pick(OBJECTIVES));
        region.append_value(c.region);
        start.append_value(FIRST_DAY - (rng.next() % 365) as i32);
        budget.append_value(c.budget);
        campaigns.push(c);
    }
    table.write(vec![
        Arc::new(id.finish()),
        Arc::new(advertiser.finish()),
        Arc::new(objective.finish()),
        Arc::new(region.finish()),
        Arc::new(start.finish()),
        Arc::new(budget.finish()),
    ])?;
    table.finish()?;

    // ads.daily_spend, and the revenue it makes per region and day.
    let mut spend = Table::create(
        dir,
        "ads",
        "daily_spend",
        vec![
            Field::new("day", DataType::Date32, false),
            Field::new("campaign_id", DataType::Int64, false),
            Field::new("impressions", DataType::Int64, false),
            Field::new("clicks", DataType::Int64, false),
            Field::new("spend_usd", DataType::Float64, false),
        ],
    )?;
    let mut revenue = vec![vec![0.0f64; REGIONS.len()]; scale.days as usize];
    let mut columns = SpendColumns::default();
    for day in 0..scale.days as i32 {
        // Weekends spend less; the year has a slow start and a busy end.
        // Days since the epoch, a Thursday: 0 is Sunday, 6 Saturday.
        let weekday = (FIRST_DAY + day + 4).rem_euclid(7);
        let weekly = if weekday == 0 || weekday == 6 {
            0.7
        } else {
            1.0
        };
        let seasonal = 0.8 + 0.4 * ((day as f64 / 365.0) * std::f64::consts::TAU).sin().abs();
        for c in &campaigns {
            let spent = cents(c.budget * weekly * seasonal * (0.6 + 0.4 * rng.unit()));
            let impressions = (spent / c.cpm * 1000.0) as i64;
            let clicks = (impressions as f64 * c.ctr * (0.8 + 0.4 * rng.unit())) as i64;
            columns.day.append_value(FIRST_DAY + day);
            columns.campaign.append_value(c.id);
            columns.impressions.append_value(impressions);
            columns.clicks.append_value(clicks);
            columns.spend.append_value(spent);
            let region = REGIONS.iter().position(|r| *r == c.region).unwrap_or(0);
            revenue[day as usize][region] += spent * (1.1 + 0.3 * rng.unit());
            if columns.day.len() == BATCH_ROWS {
                spend.write(columns.finish())?;
            }
        }
    }
    if !columns.day.is_empty() {
        spend.write(columns.finish())?;
    }
    spend.finish()?;

    let mut by_region = Table::create(
        dir,
        "ads",
        "revenue_by_region",
        vec![
            Field::new("day", DataType::Date32, false),
            Field::new("region", DataType::Utf8, false),
            Field::new("revenue_usd", DataType::Float64, false),
        ],
    )?;
    let (mut day_col, mut region_col, mut revenue_col) = (
        Date32Builder::new(),
        StringBuilder::new(),
        Float64Builder::new(),
    );
    for (day, regions) in revenue.iter().enumerate() {
        for (r, amount) in regions.iter().enumerate() {
            day_col.append_value(FIRST_DAY + day as i32);
            region_col.append_value(REGIONS[r]);
            revenue_col.append_value(cents(*amount));
        }
    }
    by_region.write(vec![
        Arc::new(day_col.finish()),
        Arc::new(region_col.finish()),
        Arc::new(revenue_col.finish()),
    ])?;
    by_region.finish()?;

    // finance.ledger
    let mut ledger = Table::create(
        dir,
        "finance",
        "ledger",
        vec![
            Field::new("entry_id", DataType::Int64, false),
            Field::new("booked_on", DataType::Date32, false),
            Field::new("account", DataType::Utf8, false),
            Field::new("cost_center", DataType::Utf8, false),
            Field::new("amount_usd", DataType::Float64, false),
            Field::new("memo", DataType::Utf8, true),
        ],
    )?;
    let mut columns = LedgerColumns::default();
    let days = scale.days.max(1) as u64;
    for n in 1..=scale.ledger_entries as i64 {
        let acct = rng.pick(ACCOUNTS);
        let sign = if acct.starts_with('4') { 1.0 } else { -1.0 };
        columns.entry.append_value(n);
        columns
            .booked
            .append_value(FIRST_DAY + (rng.next() % days) as i32);
        columns.account.append_value(acct);
        columns.center.append_value(rng.pick(COST_CENTERS));
        columns
            .amount
            .append_value(cents(sign * (10.0 + rng.unit().powi(3) * 250_000.0)));
        if rng.next().is_multiple_of(4) {
            columns.memo.append_null();
        } else {
            columns
                .memo
                .append_value(format!("{} batch {}", acct, n % 97));
        }
        if columns.entry.len() == BATCH_ROWS {
            ledger.write(columns.finish())?;
        }
    }
    if !columns.entry.is_empty() {
        ledger.write(columns.finish())?;
    }
    ledger.finish()?;
    Ok(())
}

#[derive(Default)]
struct SpendColumns {
    day: Date32Builder,
    campaign: Int64Builder,
    impressions: Int64Builder,
    clicks: Int64Builder,
    spend: Float64Builder,
}

impl SpendColumns {
    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.day.finish()),
            Arc::new(self.campaign.finish()),
            Arc::new(self.impressions.finish()),
            Arc::new(self.clicks.finish()),
            Arc::new(self.spend.finish()),
        ]
    }
}

#[derive(Default)]
struct LedgerColumns {
    entry: Int64Builder,
    booked: Date32Builder,
    account: StringBuilder,
    center: StringBuilder,
    amount: Float64Builder,
    memo: StringBuilder,
}

impl LedgerColumns {
    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.entry.finish()),
            Arc::new(self.booked.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.center.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.memo.finish()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warehouse_is_generated_once_and_the_same_every_time() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let files = ensure(&a.path().join("w"), Scale::SMALL).unwrap();
        ensure(&b.path().join("w"), Scale::SMALL).unwrap();
        assert_eq!(files.len(), 4);
        for (name, path) in &files {
            let other = b
                .path()
                .join("w")
                .join(path.strip_prefix(a.path().join("w")).unwrap());
            assert_eq!(
                std::fs::read(path).unwrap(),
                std::fs::read(other).unwrap(),
                "{name}"
            );
        }
        // Present and complete: not generated again.
        let before = std::fs::metadata(&files[1].1).unwrap().modified().unwrap();
        ensure(&a.path().join("w"), Scale::SMALL).unwrap();
        assert_eq!(
            std::fs::metadata(&files[1].1).unwrap().modified().unwrap(),
            before
        );
    }
}
