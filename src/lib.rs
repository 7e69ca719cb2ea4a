//! printbridge: a driverless IPP Everywhere print server with a cloud bridge.
//!
//! # Layout
//!
//! - [`codec`]: pure wire formats (IPP framing with limits); no I/O.
//! - [`model`]: pure domain logic: the job state machine, printer capabilities, clock trait.
//! - [`ipp`]: the IPP service, one function per operation; takes parsed requests, no sockets.
//! - [`spool`]: the durable job store (SQLite + document files) and the worker that prints.
//! - [`convert`]: streaming conversion to PDF (PWG raster and Apple raster → PDF so far).
//! - [`device`]: output devices behind one trait (file directory for now).
//! - [`net`]: the only code that binds or accepts sockets: HTTP/1.1 serving of IPP.
//! - [`config`]: plain-data configuration with validation.
//! - [`app`]: the composition root that wires the parts together.
//! - [`client`]: the command-line IPP client behind `printbridge print` and `printbridge jobs`.

pub mod app;
pub mod client;
pub mod codec;
pub mod config;
pub mod device;
pub mod ipp;
pub mod model;
pub mod net;
pub mod spool;
