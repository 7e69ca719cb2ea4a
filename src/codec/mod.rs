//! Pure wire formats: no tokio, no files, no sockets, no clock.

pub mod ipp;
pub mod ppd;
