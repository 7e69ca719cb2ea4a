//! Pure wire formats: no tokio, no files, no sockets, no clock.
//!
//! The IPP core every IPP speaker shares (the appliance's printer, the cloud's Infrastructure
//! Printer, the clients): [`ipp`] frames and encodes messages, [`ipp_op`] names the operations,
//! [`ipp_status`] the status codes and the response builder, [`ipp_check`] the RFC 8011 §4.1
//! request checks, [`ipp_attr`] the attribute builders and lookups.

pub mod dnssd_txt;
pub mod ipp;
pub mod ipp_attr;
pub mod ipp_check;
pub mod ipp_op;
pub mod ipp_status;
pub mod ppd;
pub mod pwg;
pub mod urf;
