//! The sessions' group commit ([`SessionWriter`]): while one group of session writes is being
//! committed, the next collects, and one of its callers then writes it as one multi-row
//! statement. Each caller returns only once its own row is committed; if a group fails, its
//! callers write their rows one by one, so each gets its own precise error. No background task
//! is involved: the work runs on the callers' own tasks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use time::PrimitiveDateTime;
use tokio::sync::oneshot;

use super::DbPool;

/// Most rows written by one grouped statement (5 parameters each, well under the backends'
/// limits).
const MAX_GROUP: usize = 500;
/// Grouped statements up to this many rows are prepared once per connection; larger ones are
/// prepared for each use (their text varies with the row count).
const MAX_CACHED_GROUP: usize = 8;

/// One session row to write.
#[derive(Clone, Debug)]
pub(super) struct SessionRow {
    pub(super) id_hash: String,
    pub(super) user_id: Option<i64>,
    pub(super) data: String,
    pub(super) expiry: PrimitiveDateTime,
    pub(super) now: PrimitiveDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Insert unless the id exists (answers whether it was inserted).
    Create,
    /// Insert or replace.
    Save,
}

/// A write in a group: a copy of the caller's row, and where to answer (`None` for the leader's
/// own row).
struct Pending {
    kind: Kind,
    row: SessionRow,
    done: Option<oneshot::Sender<Answer>>,
}

/// What a waiting caller is told.
enum Answer {
    /// Its row is committed (`false`: a create whose id was taken).
    Done(bool),
    /// Its group failed: it writes the row itself.
    Failed,
    /// It leads the next group: these rows, its own among them.
    Lead(Vec<Pending>),
}

/// Group commit of session writes (see the module docs).
///
/// A caller that finds no group being written leads: it writes its row, then hands the rows that
/// queued meanwhile to the first of their callers, who writes them as the next group, and so on.
/// Each caller writes at most one group besides waiting for the one in progress, and a leader
/// that is cancelled hands over (or releases) the lead when dropped, so nobody waits forever.
#[derive(Debug, Default)]
pub(super) struct SessionWriter {
    state: Mutex<WriterState>,
}

#[derive(Default)]
struct WriterState {
    queue: Vec<Pending>,
    leading: bool,
}

impl std::fmt::Debug for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterState")
            .field("queued", &self.queue.len())
            .field("leading", &self.leading)
            .finish()
    }
}

impl SessionWriter {
    /// Writes `row` in a group: `Ok(inserted)` once committed (always `true` for a save), `Err`
    /// when the caller must write it itself.
    pub(super) async fn write(
        &self,
        pool: &DbPool,
        kind: Kind,
        row: &SessionRow,
    ) -> Result<bool, ()> {
        let (done, answer) = oneshot::channel();
        let lead_now = {
            let mut state = self.state.lock().map_err(|_| ())?;
            if state.leading {
                state.queue.push(Pending {
                    kind,
                    row: row.clone(),
                    done: Some(done),
                });
                false
            } else {
                state.leading = true;
                true
            }
        };
        let group = if lead_now {
            vec![Pending {
                kind,
                row: row.clone(),
                done: None,
            }]
        } else {
            match answer.await {
                Ok(Answer::Done(inserted)) => return Ok(inserted),
                Ok(Answer::Lead(group)) => group,
                Ok(Answer::Failed) | Err(_) => return Err(()),
            }
        };
        Leadership {
            writer: self,
            active: true,
        }
        .lead(pool, group)
        .await
    }

    /// Hands `next` to the first of its callers still waiting; `Err` with nothing left when all
    /// of them gave up.
    fn hand_over(mut next: Vec<Pending>) -> Result<(), Vec<Pending>> {
        while let Some(first) = next.first_mut() {
            let Some(done) = first.done.take() else {
                next.remove(0);
                continue;
            };
            match done.send(Answer::Lead(next)) {
                Ok(()) => return Ok(()),
                Err(Answer::Lead(back)) => {
                    // That caller was cancelled: its row is no longer wanted.
                    next = back;
                    next.remove(0);
                }
                Err(_) => return Err(Vec::new()),
            }
        }
        Err(next)
    }
}

/// The lead of the writer, released (or handed over) when dropped.
struct Leadership<'a> {
    writer: &'a SessionWriter,
    active: bool,
}

impl Leadership<'_> {
    /// Writes `group`, answers its callers, then hands over what queued meanwhile.
    async fn lead(mut self, pool: &DbPool, mut group: Vec<Pending>) -> Result<bool, ()> {
        let mut mine = Err(());
        loop {
            let results = write_group(pool, &group).await;
            for (pending, result) in group.drain(..).zip(results) {
                match pending.done {
                    None => mine = result.ok_or(()),
                    Some(done) => {
                        let _gone = done.send(result.map_or(Answer::Failed, Answer::Done));
                    }
                }
            }
            let next = {
                let Ok(mut state) = self.writer.state.lock() else {
                    return mine;
                };
                if state.queue.is_empty() {
                    state.leading = false;
                    self.active = false;
                    return mine;
                }
                std::mem::take(&mut state.queue)
            };
            match SessionWriter::hand_over(next) {
                Ok(()) => {
                    self.active = false;
                    return mine;
                }
                Err(rest) => group = rest,
            }
        }
    }
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        // Cancelled while leading: whoever waits must not wait forever.
        let Ok(mut state) = self.writer.state.lock() else {
            return;
        };
        let next = std::mem::take(&mut state.queue);
        if let Err(rest) = SessionWriter::hand_over(next) {
            state.leading = false;
            for pending in rest {
                if let Some(done) = pending.done {
                    let _gone = done.send(Answer::Failed);
                }
            }
        }
    }
}

/// Writes a group: creates in one statement, saves in another. Answers, in order: `Some(inserted)`
/// per row, or `None` for the rows of a statement that failed.
async fn write_group(pool: &DbPool, group: &[Pending]) -> Vec<Option<bool>> {
    let writer = GroupWriter { pool: pool.clone() };
    let mut results = vec![None; group.len()];
    let (creates, saves): (Vec<usize>, Vec<usize>) =
        (0..group.len()).partition(|&i| group[i].kind == Kind::Create);
    for chunk in creates.chunks(MAX_GROUP) {
        writer.creates(group, chunk, &mut results).await;
    }
    for chunk in saves.chunks(MAX_GROUP) {
        writer.saves(group, chunk, &mut results).await;
    }
    results
}

/// `VALUES ($1, $2, $3, $4, $5, $5), ($6, …)` for `rows` rows of five parameters.
fn values(rows: usize) -> String {
    let mut sql = String::with_capacity(rows * 40);
    for i in 0..rows {
        let p = i * 5;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 5
        ));
    }
    sql
}

const INSERT_COLUMNS: &str = "INSERT INTO \"rampart_session\" \
     (\"id\", \"user_id\", \"data\", \"expiry_date\", \"created_at\", \"last_seen_at\") VALUES ";

/// Runs grouped statements on a pool.
struct GroupWriter {
    pool: DbPool,
}

impl GroupWriter {
    /// Inserts the new sessions `indexes` of `group`; an id already taken (in the table or
    /// earlier in the group) answers `false`.
    async fn creates(&self, group: &[Pending], indexes: &[usize], results: &mut [Option<bool>]) {
        let mut seen = HashSet::with_capacity(indexes.len());
        let mut rows = Vec::with_capacity(indexes.len());
        for &i in indexes {
            if seen.insert(group[i].row.id_hash.as_str()) {
                rows.push(i);
            } else {
                results[i] = Some(false);
            }
        }
        let sql = format!(
            "{INSERT_COLUMNS}{} ON CONFLICT (\"id\") DO NOTHING RETURNING \"id\"",
            values(rows.len())
        );
        let persistent = rows.len() <= MAX_CACHED_GROUP;
        let inserted: Result<Vec<String>, sqlx::Error> = with_pool!(self, |pool| {
            let mut query = sqlx::query_scalar::<_, String>(&sql).persistent(persistent);
            for &i in &rows {
                let row = &group[i].row;
                query = query
                    .bind(&row.id_hash)
                    .bind(row.user_id)
                    .bind(&row.data)
                    .bind(row.expiry)
                    .bind(row.now);
            }
            query.fetch_all(pool).await
        });
        match inserted {
            Ok(ids) => {
                let ids: HashSet<String> = ids.into_iter().collect();
                for &i in &rows {
                    results[i] = Some(ids.contains(&group[i].row.id_hash));
                }
            }
            Err(error) => {
                tracing::debug!(%error, rows = rows.len(), "grouped session insert failed; writing one by one");
            }
        }
    }

    /// Inserts or replaces the sessions `indexes` of `group`; for an id saved twice, the last
    /// save wins.
    async fn saves(&self, group: &[Pending], indexes: &[usize], results: &mut [Option<bool>]) {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(indexes.len());
        for &i in indexes {
            last.insert(group[i].row.id_hash.as_str(), i);
        }
        let rows: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|&i| last.get(group[i].row.id_hash.as_str()) == Some(&i))
            .collect();
        let sql = format!(
            "{INSERT_COLUMNS}{} ON CONFLICT (\"id\") DO UPDATE SET \"user_id\" = excluded.\"user_id\", \
             \"data\" = excluded.\"data\", \"expiry_date\" = excluded.\"expiry_date\", \
             \"last_seen_at\" = excluded.\"last_seen_at\"",
            values(rows.len())
        );
        let persistent = rows.len() <= MAX_CACHED_GROUP;
        let saved: Result<(), sqlx::Error> = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).persistent(persistent);
            for &i in &rows {
                let row = &group[i].row;
                query = query
                    .bind(&row.id_hash)
                    .bind(row.user_id)
                    .bind(&row.data)
                    .bind(row.expiry)
                    .bind(row.now);
            }
            query.execute(pool).await.map(|_| ())
        });
        match saved {
            Ok(()) => {
                for &i in indexes {
                    results[i] = Some(true);
                }
            }
            Err(error) => {
                tracing::debug!(%error, rows = rows.len(), "grouped session save failed; writing one by one");
            }
        }
    }
}
