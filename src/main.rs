//! The `printbridge` command: parses arguments, loads configuration and runs one role.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use printbridge::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "printbridge",
    version,
    about = "A driverless IPP Everywhere print server with a cloud bridge"
)]
struct Cli {
    /// How log lines are written: auto (journal under systemd, else text), text, journal, json.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "FORMAT"
    )]
    log_format: printbridge::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the appliance: an IPP Everywhere printer on port 8631 that spools and prints jobs.
    Serve(ServeArgs),
    /// Print a file on an IPP printer and follow the job to completion.
    Print(printbridge::client::PrintArgs),
    /// List the jobs of an IPP printer.
    Jobs(printbridge::client::JobsArgs),
    /// Show a printer's state in words, its queue length, and the appliance's cloud registration.
    Status(printbridge::client::StatusArgs),
    /// Print a test page (colour bars, grayscale, margins, the printer's name, URIs and
    /// capabilities) on the appliance's printer, or on one of its `[[queue]]`s.
    TestPage(printbridge::client::TestPageArgs),
    /// Check the installation (listeners, DNS-SD, state directory, devices, TLS, cloud, clock)
    /// and say how to fix what is wrong; exits 0 only when every check passes.
    Doctor(printbridge::ops::doctor::DoctorArgs),
    /// Cancel a job (`cancel JOB-ID`) or all the jobs you may cancel (`cancel -a`).
    Cancel(printbridge::client::CancelArgs),
    /// Release a job held for release with its PIN (`release JOB --pin PIN`), or list the jobs
    /// waiting for release (`release --list`).
    Release(printbridge::client::ReleaseArgs),
    /// Manage the appliance's local users: `user add NAME [--admin]`, `user del NAME`, `user list`.
    User(printbridge::auth::cli::UserArgs),
    /// Run the cloud print service on 127.0.0.1:8080, or administer it (`cloud admin ...`).
    Cloud(printbridge::cloud::CloudArgs),
    /// Run the fleet server on 127.0.0.1:8643 (a directory of appliances where users ask for
    /// registration), or administer it (`fleet admin ...`).
    Fleet(printbridge::fleet::FleetArgs),
    /// Register with the cloud through a running appliance and follow the request to its
    /// outcome, or show requests (`--status [ID]`).
    Register(printbridge::bridge::cli::RegisterArgs),
    /// Sign a cloud account in on a shared queue, at the appliance's panel (`signin QUEUE -u EMAIL`).
    Signin(printbridge::bridge::signin_cli::SignArgs),
    /// Sign a cloud account out of a shared queue: the queue leaves the account's group.
    Signout(printbridge::bridge::signin_cli::SignArgs),
    /// Log in to the cloud (a session for your printer group; the token is kept in
    /// ~/.config/printbridge/session.json): `login --cloud URL -u EMAIL [--choose]`.
    Login(printbridge::pc::LoginArgs),
    /// End your cloud session (your group's printers sign out): `logout [--choose]`.
    Logout(printbridge::pc::LogoutArgs),
    /// Your printer group in the cloud: `group list`, `group settings [KEY=VALUE ...]`,
    /// `group push KEY=VALUE ... [--printer ID ...]`.
    Group(printbridge::pc::GroupArgs),
    /// Convert a document as the appliance would (PDF, PWG raster, URF; `-o number-up=2` ...).
    Convert(printbridge::convert_cmd::ConvertArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Configuration file (TOML); see docs/config.md.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8631 or [::]:8631 (repeatable; replaces server.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Where the spool and output live (replaces server.state_dir).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Printer name (replaces printer.name).
    #[arg(long)]
    name: Option<String>,
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    printbridge::config::ServeOverrides {
        listen: args.listen,
        state_dir: args.state_dir,
        name: args.name,
    }
    .apply(&mut config);
    printbridge::app::run_serve(config)
        .await
        .context("the appliance stopped")
}

async fn cloud(args: printbridge::cloud::CloudArgs) -> anyhow::Result<()> {
    let config = args.options.config()?;
    Ok(printbridge::app::cloud::run_cloud(config, args.command).await?)
}

async fn fleet(args: printbridge::fleet::FleetArgs) -> anyhow::Result<()> {
    let config = args.options.config()?;
    Ok(printbridge::app::fleet::run_fleet(config, args.command).await?)
}

/// Large allocations (argon2's ~19 MiB per password check, a rendered raster page) go straight to
/// mmap and back to the kernel when freed. Left alone, glibc raises its mmap threshold after the
/// first such free and serves later ones from per-thread arenas that keep the memory, so a
/// server's RSS would grow by that much for every worker thread that ever checked a password.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations() {
    // SAFETY: mallopt only tunes the allocator; called first thing, before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations() {}

fn main() -> ExitCode {
    return_large_allocations();
    // Before any other thread exists: it unsets LISTEN_FDS/LISTEN_PID (socket activation).
    printbridge::net::systemd::claim_activated_sockets();
    let cli = Cli::parse();
    printbridge::logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("printbridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Print(args) => printbridge::client::print(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Jobs(args) => printbridge::client::jobs(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Status(args) => printbridge::client::status(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::TestPage(args) => printbridge::client::test_page(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Doctor(args) => printbridge::ops::doctor::run(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Cancel(args) => printbridge::client::cancel(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Release(args) => printbridge::client::release(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::User(args) => printbridge::auth::cli::run(&args, &mut std::io::stdout())
                .map_err(anyhow::Error::from),
            Command::Cloud(args) => cloud(args).await,
            Command::Fleet(args) => fleet(args).await,
            Command::Register(args) => printbridge::bridge::cli::run(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Signin(args) => printbridge::bridge::signin_cli::sign_in(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Signout(args) => printbridge::bridge::signin_cli::sign_out(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Login(args) => printbridge::pc::login(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Logout(args) => printbridge::pc::logout(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Group(args) => printbridge::pc::group(&args)
                .await
                .map_err(anyhow::Error::from),
            Command::Convert(args) => printbridge::convert_cmd::run(&args)
                .map(drop)
                .map_err(anyhow::Error::from),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our error messages already include their cause; print each distinct part once.
            let mut msg = String::new();
            for cause in e.chain() {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&c);
                }
            }
            eprintln!("printbridge: {msg}");
            ExitCode::FAILURE
        }
    }
}
