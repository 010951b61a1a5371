//! The big tables of a gateway (memory entries, the audit log, documents) written straight from
//! SQLite rows to JSON bytes, redacted on the way.
//!
//! A large gateway has hundreds of thousands of such rows. Building a `serde_json::Value` per row
//! and scanning every key of every row again cost more than the rest of the backup put together;
//! here a column's verdict (secret by name, JSON text, verbatim) is worked out once per query, and
//! the rows are redacted and serialized in batches on every core while SQLite reads the next ones.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::Value;

use super::redact::{is_secret_key, redact_str, Redactor, REDACTED};
use super::{GatewayError, GatewayResult};

/// A batch ends at this many rows or this much text, whichever comes first (documents carry
/// their whole extracted text).
const ROWS_PER_BATCH: usize = 2048;
const BATCH_TEXT_BYTES: usize = 4 << 20;

/// How one column of a query is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnRule {
    /// Scanned for secret-shaped values.
    Scan,
    /// JSON text, written as JSON and scanned key by key.
    Json,
    /// A secret by design (the per-category rules): always the marker.
    Secret,
    /// Written as it is: user content that the backup carries verbatim anyway (a document's
    /// extracted text is the text of its raw file, which is backed up byte for byte).
    Verbatim,
}

enum Cell {
    Null,
    Int(i64),
    Real(f64),
    /// A range of the batch's text buffer.
    Text(std::ops::Range<usize>),
}

/// Rows read from SQLite, their text in one buffer: a handful of allocations per batch instead of
/// one per cell, which (freed on another thread) otherwise serialises every core on malloc's locks.
#[derive(Default)]
struct Batch {
    cells: Vec<Cell>,
    text: Vec<u8>,
    rows: usize,
}

struct Column {
    /// `"name":`, escaped once.
    key: Vec<u8>,
    name: String,
    rule: ColumnRule,
    secret_name: bool,
}

/// A batch's JSON and the locations redacted in it.
type EncodedBatch = GatewayResult<(Vec<u8>, Vec<String>)>;

/// What writing a query's rows came to: the row count and every redacted location.
pub struct RowsWritten {
    pub rows: u64,
    pub redacted: Vec<String>,
}

/// Run `sql` and write its rows to `out` as JSON objects (keys in name order), separated by
/// `separator` (`"\n"` for JSON Lines, `",\n"` inside an array); `rule` gives each column's
/// treatment. Redacted locations are reported as `{file}:{row number}#/{column}[/pointer]`.
/// A few batches are in flight at a time, so memory stays bounded whatever the table's size.
#[allow(clippy::too_many_arguments)]
pub fn query_json(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    file: &str,
    separator: &[u8],
    rule: impl Fn(&str) -> ColumnRule,
    sql_err: impl Fn(rusqlite::Error) -> GatewayError,
    out: &mut dyn Write,
) -> GatewayResult<RowsWritten> {
    let mut st = conn.prepare(sql).map_err(&sql_err)?;
    let mut columns: Vec<(usize, Column)> = st
        .column_names()
        .enumerate()
        .map(|(i, name)| {
            let key = format!("{}:", Value::String(name.to_string())).into_bytes();
            let col = Column { key, name: name.to_string(), rule: rule(name), secret_name: is_secret_key(name) };
            (i, col)
        })
        .collect();
    columns.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let order: Vec<usize> = columns.iter().map(|c| c.0).collect();
    let columns: Vec<Column> = columns.into_iter().map(|c| c.1).collect();

    let mut q = st.query(params).map_err(&sql_err)?;
    let (tx, rx) = mpsc::channel::<(usize, EncodedBatch)>();
    let mut sink = OrderedSink { out, file, separator, next: 0, waiting: BTreeMap::new(), redacted: Vec::new() };
    let max_in_flight = 2 * rayon::current_num_threads() + 2;
    let (mut batches, mut rows) = (0usize, 0u64);
    rayon::in_place_scope(|scope| -> GatewayResult<()> {
        loop {
            // Backpressure: wait for the oldest batches before reading more.
            while batches - sink.done() >= max_in_flight {
                let (i, part) = rx.recv().map_err(|_| GatewayError::Invalid(format!("{file}: a writer task died")))?;
                sink.finished(i, part)?;
            }
            let batch = read_batch(&mut q, &order, &sql_err)?;
            if batch.rows == 0 {
                break;
            }
            let (index, first_row) = (batches, rows + 1);
            batches += 1;
            rows += batch.rows as u64;
            let (tx, columns) = (tx.clone(), &columns);
            scope.spawn(move |_| {
                let _ = tx.send((index, encode_batch(columns, &batch, first_row, file, separator)));
            });
        }
        while sink.done() < batches {
            let (i, part) = rx.recv().map_err(|_| GatewayError::Invalid(format!("{file}: a writer task died")))?;
            sink.finished(i, part)?;
        }
        Ok(())
    })?;
    Ok(RowsWritten { rows, redacted: sink.redacted })
}

fn read_batch(
    q: &mut rusqlite::Rows<'_>,
    order: &[usize],
    sql_err: &impl Fn(rusqlite::Error) -> GatewayError,
) -> GatewayResult<Batch> {
    let mut batch = Batch { cells: Vec::with_capacity(ROWS_PER_BATCH * order.len()), ..Batch::default() };
    while batch.rows < ROWS_PER_BATCH && batch.text.len() < BATCH_TEXT_BYTES {
        let Some(r) = q.next().map_err(sql_err)? else { break };
        for &i in order {
            let start = batch.text.len();
            let cell = match r.get_ref(i).map_err(sql_err)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(n) => Cell::Int(n),
                ValueRef::Real(f) => Cell::Real(f),
                ValueRef::Text(t) => {
                    match std::str::from_utf8(t) {
                        Ok(_) => batch.text.extend_from_slice(t),
                        Err(_) => batch.text.extend_from_slice(String::from_utf8_lossy(t).as_bytes()),
                    }
                    Cell::Text(start..batch.text.len())
                }
                ValueRef::Blob(b) => {
                    batch.text.extend_from_slice(hex::encode(b).as_bytes());
                    Cell::Text(start..batch.text.len())
                }
            };
            batch.cells.push(cell);
        }
        batch.rows += 1;
    }
    Ok(batch)
}

/// Writes encoded batches in their order, whatever order they finish in.
struct OrderedSink<'a> {
    out: &'a mut dyn Write,
    file: &'a str,
    separator: &'a [u8],
    next: usize,
    waiting: BTreeMap<usize, EncodedBatch>,
    redacted: Vec<String>,
}

impl OrderedSink<'_> {
    /// Batches received so far (written or waiting for an earlier one).
    fn done(&self) -> usize {
        self.next + self.waiting.len()
    }

    fn finished(&mut self, index: usize, part: EncodedBatch) -> GatewayResult<()> {
        self.waiting.insert(index, part);
        while let Some(part) = self.waiting.remove(&self.next) {
            let (data, redacted) = part?;
            let io = |e| GatewayError::Invalid(format!("{}: writing: {e}", self.file));
            if self.next > 0 {
                self.out.write_all(self.separator).map_err(io)?;
            }
            self.out.write_all(&data).map_err(io)?;
            self.redacted.extend(redacted);
            self.next += 1;
        }
        Ok(())
    }
}

fn encode_batch(columns: &[Column], batch: &Batch, first_row: u64, file: &str, separator: &[u8]) -> EncodedBatch {
    let invalid = |e: serde_json::Error| GatewayError::Invalid(format!("{file}: {e}"));
    let mut out = Vec::with_capacity(batch.text.len() + batch.text.len() / 4 + batch.cells.len() * 16);
    let mut redacted = Vec::new();
    let mut redactor = Redactor::default();
    // Every range was cut at cell boundaries of text that is valid UTF-8 (checked or made so).
    let text = std::str::from_utf8(&batch.text).map_err(|e| GatewayError::Invalid(format!("{file}: {e}")))?;
    for (r, cells) in batch.cells.chunks(columns.len().max(1)).enumerate() {
        if r > 0 {
            out.extend_from_slice(separator);
        }
        let row = first_row + r as u64;
        out.push(b'{');
        for (c, (col, cell)) in columns.iter().zip(cells).enumerate() {
            if c > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&col.key);
            let mark = |redacted: &mut Vec<String>| redacted.push(format!("{file}:{row}#/{}", col.name));
            let s = match cell {
                Cell::Text(range) => text.get(range.clone()).unwrap_or_default(),
                _ => "",
            };
            match cell {
                Cell::Null => out.extend_from_slice(b"null"),
                _ if col.rule == ColumnRule::Secret => {
                    serde_json::to_writer(&mut out, REDACTED).map_err(invalid)?;
                    mark(&mut redacted);
                }
                Cell::Int(_) | Cell::Real(_) if col.secret_name => {
                    serde_json::to_writer(&mut out, REDACTED).map_err(invalid)?;
                    mark(&mut redacted);
                }
                Cell::Int(n) => serde_json::to_writer(&mut out, n).map_err(invalid)?,
                Cell::Real(f) => serde_json::to_writer(&mut out, f).map_err(invalid)?,
                Cell::Text(_) => match col.rule {
                    ColumnRule::Json => {
                        let mut v: Value = serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()));
                        let mut wrapped = serde_json::json!({ col.name.as_str(): v.take() });
                        redactor.redact_json(&mut wrapped, &format!("{file}:{row}"), &mut redacted);
                        let v = wrapped.get(col.name.as_str()).unwrap_or(&Value::Null);
                        serde_json::to_writer(&mut out, v).map_err(invalid)?;
                    }
                    ColumnRule::Verbatim => serde_json::to_writer(&mut out, s).map_err(invalid)?,
                    _ => match redact_str(s, col.secret_name) {
                        Some(r) => {
                            serde_json::to_writer(&mut out, &r).map_err(invalid)?;
                            mark(&mut redacted);
                        }
                        None => serde_json::to_writer(&mut out, s).map_err(invalid)?,
                    },
                },
            }
        }
        out.push(b'}');
    }
    Ok((out, redacted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id TEXT, note TEXT, detail TEXT, api_key TEXT, body TEXT, n INTEGER, x REAL);
             INSERT INTO t VALUES ('a', 'plain words', '{\"client_secret\":\"s3cr3t-value\",\"ok\":1}', 'k1',
                                   'sk-abcdefghijklmnop', 7, 1.5);
             INSERT INTO t VALUES ('b', 'use ghp_abcdefghijklmnopqrstuvwxyz01 now', 'not json', NULL, 'x', NULL, NULL);",
        )
        .unwrap();
        c
    }

    fn rule(name: &str) -> ColumnRule {
        match name {
            "detail" => ColumnRule::Json,
            "body" => ColumnRule::Verbatim,
            _ => ColumnRule::Scan,
        }
    }

    #[test]
    fn rows_match_what_the_value_path_would_write_and_secrets_are_gone() {
        let c = db();
        let err = |e| GatewayError::Invalid(format!("{e}"));
        let mut data = Vec::new();
        let out =
            query_json(&c, "SELECT * FROM t ORDER BY rowid", &[], "t.jsonl", b"\n", rule, err, &mut data).unwrap();
        assert_eq!(out.rows, 2);
        let text = String::from_utf8(data).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["detail"]["client_secret"], REDACTED);
        assert_eq!(lines[0]["detail"]["ok"], 1);
        assert_eq!(lines[0]["api_key"], REDACTED, "a secret-named column");
        assert_eq!(lines[0]["body"], "sk-abcdefghijklmnop", "verbatim columns are not scanned");
        assert_eq!(lines[0]["n"], 7);
        assert_eq!(lines[0]["x"], 1.5);
        assert_eq!(lines[1]["note"], format!("use {REDACTED} now"));
        assert_eq!(lines[1]["detail"], "not json");
        assert!(lines[1]["api_key"].is_null());
        let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in name order: {keys:?}");
        assert!(out.redacted.contains(&"t.jsonl:1#/detail/client_secret".to_string()), "{:?}", out.redacted);
        assert!(out.redacted.contains(&"t.jsonl:2#/note".to_string()));
    }

    #[test]
    fn many_batches_keep_their_order() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) INSERT INTO t SELECT i FROM n;",
        )
        .unwrap();
        let err = |e| GatewayError::Invalid(format!("{e}"));
        let mut data = Vec::new();
        let sql = "SELECT id FROM t ORDER BY id";
        let out = query_json(&c, sql, &[], "t", b",\n", |_| ColumnRule::Scan, err, &mut data).unwrap();
        assert_eq!(out.rows, 10000);
        let v: Value = serde_json::from_slice(&[b"[".as_slice(), &data, b"]"].concat()).unwrap();
        let ids: Vec<i64> = v.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=10000).collect::<Vec<_>>());
    }
}
