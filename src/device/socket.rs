//! The AppSocket/JetDirect output device (`socket://host:9100`): one raw TCP connection per
//! document, the document written as PDF or PWG raster, then a half-close and a wait for the
//! printer to close its side, which is how such printers say they have taken the job.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    read_chunks, Chunks, Device, DeviceDocument, DeviceError, DeviceFuture, DeviceJob,
    DownstreamRecord, Reporter, Settings, SocketFormat,
};

pub struct SocketDevice {
    host: String,
    port: u16,
    settings: Settings,
    reporter: Reporter,
    /// Documents of a job already delivered, so a retry after a later document failed does not
    /// print the earlier ones again. Forgotten when the job ends.
    delivered: Mutex<HashMap<u32, u32>>,
    /// Jobs whose current attempt reached the printer (a connection was open for them): if that
    /// attempt is interrupted, the printer may hold part of the job and cannot be asked.
    reached: Mutex<HashSet<u32>>,
}

impl SocketDevice {
    pub fn new(host: String, port: u16, settings: Settings, reporter: Reporter) -> SocketDevice {
        SocketDevice {
            host,
            port,
            settings,
            reporter,
            delivered: Mutex::new(HashMap::new()),
            reached: Mutex::new(HashSet::new()),
        }
    }

    fn name(&self) -> String {
        if self.host.contains(':') {
            format!("socket://[{}]:{}", self.host, self.port)
        } else {
            format!("socket://{}:{}", self.host, self.port)
        }
    }

    async fn print_job(
        &self,
        job: &DeviceJob,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), DeviceError> {
        let done = self
            .delivered
            .lock()
            .expect("delivered lock")
            .get(&job.id)
            .copied()
            .unwrap_or(0);
        if let Some(ledger) = &job.ledger {
            let earlier = ledger.lookup(job.id).await.map_err(|e| {
                DeviceError::Retry(format!("cannot read the spool's record of the job: {e}"))
            })?;
            if let Some(r) = earlier.filter(|r| r.printer_uri.starts_with("socket://")) {
                return Err(DeviceError::Held {
                    message: format!(
                        "printbridge stopped without a clean shutdown while document {} of this \
                         job was being sent to {}: the printer may have printed all or part of \
                         it. Release the job to print it again, or cancel it.",
                        r.document + 1,
                        r.printer_uri
                    ),
                });
            }
        }
        for (i, doc) in super::documents_to_send(job).iter().enumerate() {
            if (i as u32) < done {
                continue;
            }
            let sent = self.send_document(job, doc, i as u32, cancel).await;
            // The outcome is known now (taken, or failed and to be sent again): the record of
            // the attempt in flight has served its purpose.
            if matches!(sent, Ok(()) | Err(DeviceError::Retry(_))) {
                if let Some(ledger) = &job.ledger {
                    if let Err(e) = ledger.clear(job.id).await {
                        tracing::warn!(
                            job = job.id,
                            "cannot clear the record of the transfer: {e}"
                        );
                    }
                }
            }
            sent?;
            self.delivered
                .lock()
                .expect("delivered lock")
                .insert(job.id, i as u32 + 1);
        }
        Ok(())
    }

    async fn send_document(
        &self,
        job: &DeviceJob,
        doc: &DeviceDocument,
        index: u32,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), DeviceError> {
        let source = self.source_for(job, doc, cancel).await?;
        let timeout = self.settings.timeout;
        self.reporter.connecting();
        let addr = (self.host.as_str(), self.port);
        let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(self.down(format!("cannot connect to {}: {e}", self.name()))),
            Err(_) => {
                return Err(self.down(format!(
                    "{} did not accept a connection within {} s",
                    self.name(),
                    timeout.as_secs()
                )))
            }
        };
        self.reporter.online();
        // Before the first byte: a crash from here on (kill -9, power loss) leaves this record,
        // and the next attempt holds the job instead of printing it again (AppSocket cannot be
        // asked what the printer got).
        if let Some(ledger) = &job.ledger {
            let record = DownstreamRecord {
                printer_uri: self.name(),
                document: index,
                job_id: None,
                job_uuid: None,
                submitted: false,
            };
            ledger.record(job.id, &record).await.map_err(|e| {
                DeviceError::Retry(format!("cannot record the transfer in the spool: {e}"))
            })?;
        }
        self.reached.lock().expect("reached lock").insert(job.id);
        let mut chunks = source;
        while let Some(chunk) = chunks.recv().await {
            if cancel.load(Ordering::Relaxed) {
                // Dropping the connection is all AppSocket offers to stop a job.
                return Err(DeviceError::Canceled);
            }
            let chunk = chunk?;
            match tokio::time::timeout(timeout, stream.write_all(&chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(self.down(format!("{} broke the connection: {e}", self.name())))
                }
                Err(_) => {
                    return Err(self.down(format!(
                        "{} took no data for {} s",
                        self.name(),
                        timeout.as_secs()
                    )))
                }
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(DeviceError::Canceled);
        }
        // Half-close: the printer sees the end of the job and closes once it has taken it.
        if let Err(e) = tokio::time::timeout(timeout, stream.shutdown())
            .await
            .unwrap_or(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "shutdown timed out",
            )))
        {
            return Err(self.down(format!(
                "{} did not take the end of the job: {e}",
                self.name()
            )));
        }
        // Whatever the printer says back (PJL status, nothing at all) is read and dropped, never
        // kept. The document is out: a printer that never closes is logged, not retried, because
        // retrying would print it twice.
        let wait = timeout.saturating_mul(10);
        let drained = tokio::time::timeout(wait, async {
            let mut buf = [0u8; 4096];
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                job = job.id,
                "{} did not close the connection within {} s after the document; taking it as printed",
                self.name(),
                wait.as_secs()
            );
        }
        Ok(())
    }

    /// The bytes to send for a document: PDF (the rendered PDF when there is one) or PWG raster.
    async fn source_for(
        &self,
        job: &DeviceJob,
        doc: &DeviceDocument,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Chunks, DeviceError> {
        let pdf = super::pdf_of(job, doc).await?;
        match self.settings.socket_format {
            SocketFormat::Pdf => match pdf {
                Some(pdf) => Ok(read_chunks(&pdf, 4)),
                None => Err(DeviceError::Fatal {
                    reason: "document-unprintable-error",
                    message: format!(
                        "{} takes PDF; document {} is {} and was not converted",
                        self.name(),
                        doc.number,
                        doc.format
                    ),
                }),
            },
            SocketFormat::PwgRaster => {
                if super::effective_format(doc).await == "image/pwg-raster" {
                    return Ok(read_chunks(doc, 4));
                }
                match pdf {
                    Some(pdf) => Ok(super::rasterize(
                        &pdf,
                        super::RasterRequest {
                            format: "image/pwg-raster",
                            resolution_dpi: self.settings.resolution_dpi,
                            // A monochrome job's PDF has no gray layer here: gray raster instead.
                            color: if job.ticket.color_mode
                                == crate::convert::ticket::ColorMode::Monochrome
                            {
                                crate::convert::pdf_raster::RasterColor::Sgray8
                            } else {
                                crate::convert::pdf_raster::RasterColor::Srgb8
                            },
                            threads: self.settings.raster_threads,
                            counters: self.settings.raster_counters.clone(),
                        },
                        cancel.clone(),
                    )),
                    None => Err(DeviceError::Fatal {
                        reason: "document-unprintable-error",
                        message: format!(
                            "document {} is {} and cannot be turned into PWG raster",
                            doc.number, doc.format
                        ),
                    }),
                }
            }
        }
    }

    fn down(&self, why: String) -> DeviceError {
        self.reporter.offline(why.clone());
        DeviceError::Retry(why)
    }
}

impl Device for SocketDevice {
    fn print<'a>(&'a self, job: &'a DeviceJob, cancel: Arc<AtomicBool>) -> DeviceFuture<'a> {
        Box::pin(async move {
            self.reached.lock().expect("reached lock").remove(&job.id);
            let result = self.print_job(job, &cancel).await;
            if !matches!(result, Err(DeviceError::Retry(_))) {
                self.delivered
                    .lock()
                    .expect("delivered lock")
                    .remove(&job.id);
            }
            result
        })
    }

    /// AppSocket carries no options: the job is rendered with them first.
    fn wants_rendered_pdf(&self) -> bool {
        true
    }

    fn makes_monochrome_itself(&self) -> bool {
        self.settings.socket_format == SocketFormat::PwgRaster
    }

    /// AppSocket has no job ids and no way to ask what was printed: once a connection carried
    /// any of the job (or an earlier document of it was delivered), the printer may hold part.
    fn interrupted(&self, job: u32) -> super::Interruption {
        let reached = self.reached.lock().expect("reached lock").remove(&job);
        let delivered = self
            .delivered
            .lock()
            .expect("delivered lock")
            .remove(&job)
            .is_some_and(|n| n > 0);
        if reached || delivered {
            super::Interruption::MayHoldPart
        } else {
            super::Interruption::SafeToResend
        }
    }
}
