//! Pure wire formats: no tokio, no files, no sockets, no clock.

pub mod dnssd_txt;
pub mod ipp;
pub mod ppd;
pub mod pwg;
pub mod urf;
