//! printbridge: a driverless IPP Everywhere print server with a cloud bridge.
//!
//! # Layout
//!
//! - [`codec`]: pure wire formats; no I/O. The IPP core every IPP speaker shares lives here:
//!   framing with limits ([`codec::ipp`]), the operations ([`codec::ipp_op`]), the status codes,
//!   `Status` and the response builder ([`codec::ipp_status`]), the RFC 8011 §4.1 request checks
//!   ([`codec::ipp_check`]) and the attribute builders ([`codec::ipp_attr`]).
//! - [`model`]: pure domain logic: the job state machine (the appliance's jobs and the cloud's
//!   INFRA jobs), printer capabilities, clock trait.
//! - [`ipp_printer`]: the appliance's IPP printer service, one function per operation; takes
//!   parsed requests, no sockets. (Which IPP is which: the `ipp` crate is only the command-line
//!   client's; [`codec::ipp`] is the wire format; [`device::ipp_downstream`] is a downstream IPP
//!   printer the appliance prints to.) To add an operation (steps in docs/architecture.md): its
//!   id in [`codec::ipp_op`] if new, then one row in the operation table in `ipp_printer/mod.rs`
//!   (it is both the dispatch and `operations-supported`) and the function it names; the cloud's
//!   Infrastructure Printer has the same kind of table in `cloud/infra.rs`.
//! - [`spool`]: the durable job store (SQLite + document files) and the worker that prints.
//! - [`convert`]: the one format sniffer ([`convert::sniff`]), and conversion: PDF, JPEG, PNG,
//!   PWG raster and Apple raster to one PDF with the job's options applied, PDF to raster; the
//!   pages printbridge composes itself (test page, cover page: [`convert::test_page`]).
//! - [`convert_cmd`]: `printbridge convert IN OUT`, the conversions as a command.
//! - [`device`]: output devices behind one trait: a directory, a downstream IPP printer
//!   (`ipp(s)://`), an AppSocket printer (`socket://`).
//! - [`dnssd`]: DNS-SD advertisement behind one trait: Avahi over D-Bus, or the embedded responder.
//! - [`net`]: the only code that binds or accepts sockets: one accept loop for every role
//!   (`net::server`: TLS sniffing, HTTP/1.1, limits, draining) and one IPP-over-HTTP endpoint
//!   (`net::ipp_endpoint`) that the appliance's printers and the cloud's Infrastructure Printers
//!   implement.
//! - [`bridge`]: appliance ↔ cloud: the registration agent (RFC 8628 device flow), its JSON API
//!   and the `printbridge register` panel; the control channel's client; the cloud link and
//!   admission of `cloud:` queues (outbound); the link to a fleet server (`fleet_link`: requests
//!   relayed by pull or push, outcomes reported back).
//! - [`notify`]: outgoing mail: the `Mailer` trait, SMTP with lettre, the message texts.
//! - [`web`]: the status and administration pages (axum + askama), mounted by `net`.
//! - [`auth`]: local users (argon2) and HTTP Basic authentication with throttling.
//! - [`config`]: plain-data configuration with validation.
//! - [`logging`]: log lines for a terminal, the journal (`<N>` priorities) or JSON collectors.
//! - [`state_lock`]: one appliance per state directory (an flock held for the process's life).
//! - [`app`]: the composition root that wires the parts together: the appliance in `app`, the
//!   cloud in `app::cloud`.
//! - [`client`]: the command-line IPP client behind `printbridge print`, `jobs`, `status`,
//!   `cancel` and `test-page`.
//! - [`metrics`]: the Prometheus metrics every role serves at `/metrics` (docs/operations.md).
//! - [`ops`]: `printbridge doctor`, the installation self-check (docs/operations.md).
//! - [`cloud`]: the cloud print service (`printbridge cloud`): accounts, RFC 8628 device
//!   authorization, verification pages (axum + askama).
//! - [`fleet`]: the fleet server (`printbridge fleet`): the directory of appliances, the portal
//!   where users ask for registration, the relay of requests to appliances by pull and push.
//! - [`password`]: argon2id password hashing and checking, for local users, cloud accounts and
//!   release PINs.
//! - [`pc`]: the user's session with the cloud on the command line: `printbridge login`,
//!   `logout` and `group` (the token kept in the user's config directory, mode 0600).
//! - [`store`]: the cloud's and the fleet's database (sqlx `Any`: SQLite by default, PostgreSQL), migrations in
//!   `migrations/cloud/` and `migrations/fleet/`.

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
pub mod fleet;
pub mod ipp_printer;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod net;
pub mod notify;
pub mod ops;
pub mod password;
pub mod pc;
pub mod spool;
pub mod state_lock;
pub mod store;
pub mod web;
