//! The control channel's instruction queue in the database, so that any instance can queue an
//! instruction and any instance can hand it to the device's long poll. Numbers are per device; an
//! acknowledgement is one conditional UPDATE (`acked_at IS NULL`), so it counts once.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, Store, StoreError};

/// One instruction for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub id: String,
    pub device_id: String,
    pub seq: i64,
    pub kind: String,
    /// A JSON object, as text.
    pub payload: String,
    pub created_at: i64,
    pub ack_status: Option<String>,
    pub ack_message: Option<String>,
}

const COLUMNS: &str = "id, device_id, seq, kind, payload, created_at, ack_status, ack_message";

fn row(r: &AnyRow) -> Result<Instruction, sqlx::Error> {
    Ok(Instruction {
        id: r.try_get("id")?,
        device_id: r.try_get("device_id")?,
        seq: r.try_get("seq")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        created_at: r.try_get("created_at")?,
        ack_status: r.try_get("ack_status")?,
        ack_message: r.try_get("ack_message")?,
    })
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Recorded,
    AlreadyAcknowledged,
    NotFound,
}

impl Store {
    /// Queues an instruction with the device's next number. Two instances queueing at once may
    /// pick the same number; the UNIQUE constraint refuses one and it tries again.
    pub async fn queue_instruction(
        &self,
        device_id: &str,
        kind: &str,
        payload: &str,
        now: i64,
    ) -> Result<Instruction, StoreError> {
        let mut last = None;
        for _ in 0..5 {
            let id = new_id();
            let r = sqlx::query(&format!(
                "INSERT INTO device_instructions (id, device_id, seq, kind, payload, created_at) \
                 SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM device_instructions \
                 WHERE device_id = $2 RETURNING {COLUMNS}"
            ))
            .bind(&id)
            .bind(device_id)
            .bind(kind)
            .bind(payload)
            .bind(now)
            .fetch_one(self.writer())
            .await;
            match r {
                Ok(r) => return Ok(row(&r)?),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("five attempts").into())
    }

    /// Queues many instructions in one transaction (a group sign-in or sign-out for a whole
    /// group): one commit instead of one per instruction. Each takes its device's next number
    /// as [`Store::queue_instruction`] does; when another instance took a number first the
    /// UNIQUE constraint refuses it and the whole batch is tried again.
    pub async fn queue_instructions(
        &self,
        items: &[(String, String, String)],
        now: i64,
    ) -> Result<Vec<Instruction>, StoreError> {
        let mut last = None;
        for _ in 0..5 {
            let mut tx = self.begin_write().await?;
            let mut out = Vec::with_capacity(items.len());
            let mut failed = None;
            for (device_id, kind, payload) in items {
                let r = sqlx::query(&format!(
                    "INSERT INTO device_instructions (id, device_id, seq, kind, payload, \
                       created_at) \
                     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 \
                     FROM device_instructions WHERE device_id = $2 RETURNING {COLUMNS}"
                ))
                .bind(new_id())
                .bind(device_id)
                .bind(kind)
                .bind(payload)
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
                match r {
                    Ok(r) => out.push(row(&r)?),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => {
                    tx.commit().await?;
                    return Ok(out);
                }
                Some(e) => {
                    let _ = tx.rollback().await;
                    last = Some(e);
                }
            }
        }
        Err(last.expect("five attempts").into())
    }

    /// The device's instructions not acknowledged yet, in order.
    pub async fn open_instructions(&self, device_id: &str) -> Result<Vec<Instruction>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_instructions WHERE device_id = $1 AND acked_at IS NULL \
             ORDER BY seq LIMIT 100"
        ))
        .bind(device_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Which of `devices` have instructions not acknowledged yet: one query, whatever the
    /// number of devices (callers keep the list within the backends' parameter limits: 500).
    pub async fn devices_with_open_instructions(
        &self,
        devices: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (1..=devices.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT DISTINCT device_id FROM device_instructions \
             WHERE acked_at IS NULL AND device_id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for d in devices {
            q = q.bind(d);
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("device_id"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn instruction(&self, id: &str) -> Result<Option<Instruction>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_instructions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Records the device's acknowledgement of one of its own instructions.
    pub async fn acknowledge_instruction(
        &self,
        device_id: &str,
        id: &str,
        status: &str,
        message: &str,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        let done = sqlx::query(
            "UPDATE device_instructions SET acked_at = $1, ack_status = $2, ack_message = $3 \
             WHERE id = $4 AND device_id = $5 AND acked_at IS NULL",
        )
        .bind(now)
        .bind(status)
        .bind(message)
        .bind(id)
        .bind(device_id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(AckOutcome::Recorded);
        }
        Ok(match self.instruction(id).await? {
            Some(i) if i.device_id == device_id => AckOutcome::AlreadyAcknowledged,
            _ => AckOutcome::NotFound,
        })
    }
}
