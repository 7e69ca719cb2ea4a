//! Output devices behind one trait. The file device writes each document into a directory; network
//! devices (ipp://, socket://) come with the conversion work.

pub mod file;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Why a device could not print a job.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Worth trying again later (disk full, device offline): the job stays pending.
    #[error("output device unavailable: {0}")]
    Retry(String),
    /// The job itself is bad: it is aborted with `reason` (a job-state-reasons keyword).
    #[error("{message}")]
    Fatal {
        reason: &'static str,
        message: String,
    },
    #[error("canceled")]
    Canceled,
}

/// One document handed to a device: the spooled file and how it was sent.
#[derive(Debug, Clone)]
pub struct DeviceDocument {
    pub path: PathBuf,
    pub number: u32,
    pub format: String,
    pub compression: String,
}

/// What a device is asked to print.
#[derive(Debug, Clone)]
pub struct DeviceJob {
    pub id: u32,
    pub name: String,
    pub documents: Vec<DeviceDocument>,
}

pub type DeviceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeviceError>> + Send + 'a>>;

pub trait Device: Send + Sync {
    /// Prints the job. Must be idempotent: printing the same job again (after a crash) replaces
    /// what an interrupted attempt left, never adds to it. Stops early when `cancel` becomes true.
    fn print<'a>(&'a self, job: &'a DeviceJob, cancel: Arc<AtomicBool>) -> DeviceFuture<'a>;
}
