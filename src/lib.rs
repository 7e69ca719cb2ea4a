//! printbridge: a driverless IPP Everywhere print server with a cloud bridge.
//!
//! # Layout
//!
//! - [`codec`]: pure wire formats (IPP framing with limits); no I/O.
//! - [`model`]: pure domain logic: the job state machine, printer capabilities, clock trait.
//! - [`ipp`]: the IPP service, one function per operation; takes parsed requests, no sockets.
//! - [`spool`]: the durable job store (SQLite + document files) and the worker that prints.
//! - [`convert`]: streaming conversion to PDF (PWG raster and Apple raster → PDF so far).
//! - [`convert_cmd`]: `printbridge convert IN OUT`, the conversions as a command.
//! - [`device`]: output devices behind one trait (file directory for now).
//! - [`dnssd`]: DNS-SD advertisement behind one trait: Avahi over D-Bus, or the embedded responder.
//! - [`net`]: the only code that binds or accepts sockets: HTTP/1.1 serving of IPP.
//! - [`bridge`]: appliance ↔ cloud: the registration agent (RFC 8628 device flow), its JSON API
//!   and the `printbridge register` panel.
//! - [`notify`]: outgoing mail: the `Mailer` trait, SMTP with lettre, the message texts.
//! - [`web`]: the status and administration pages (axum + askama), mounted by `net`.
//! - [`auth`]: local users (argon2) and HTTP Basic authentication with throttling.
//! - [`config`]: plain-data configuration with validation.
//! - [`state_lock`]: one appliance per state directory (an flock held for the process's life).
//! - [`app`]: the composition root that wires the parts together.
//! - [`client`]: the command-line IPP client behind `printbridge print` and `printbridge jobs`.
//! - [`cloud`]: the cloud print service (`printbridge cloud`): accounts, RFC 8628 device
//!   authorization, verification pages (axum + askama).
//! - [`store`]: the cloud's database (sqlx `Any`: SQLite by default, PostgreSQL), migrations in
//!   `migrations/cloud/`.

pub mod app;
pub mod auth;
pub mod bridge;
pub mod client;
pub mod cloud;
pub mod codec;
pub mod config;
pub mod convert;
pub mod convert_cmd;
pub mod device;
pub mod dnssd;
pub mod ipp;
pub mod model;
pub mod net;
pub mod notify;
pub mod spool;
pub mod state_lock;
pub mod store;
pub mod web;
