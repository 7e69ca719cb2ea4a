//! Publishing with the mdns-sd responder built into the binary, for hosts without Avahi.
//!
//! mdns-sd keys the services it publishes by instance name and type, and a `ServiceInfo` carries
//! at most one subtype: a second registration of `printbridge._ipp._tcp` with another subtype
//! replaces the first. So each extra subtype gets its own responder: responder 0 publishes every
//! service with its first subtype (`_print`) and does the probing and conflict detection
//! (RFC 6762 §8-9); once it has announced the name, responder 1 publishes `_ipp._tcp` and
//! `_ipps._tcp` again with their second subtype (`_universal`), same name, port, host and TXT,
//! without probing (the name is already ours). Both share UDP 5353 (SO_REUSEPORT) and answer with
//! identical SRV, TXT and address records, which multicast DNS allows (RFC 6762 §6: shared
//! answers), and each answers the PTR query of its own subtype (`_print._sub._ipp._tcp`,
//! `_universal._sub._ipp._tcp`).
//!
//! A name conflict found while probing makes mdns-sd rename the service itself; we take that as
//! [`Event::Collision`] and register everything again under our next name, so that every service
//! keeps the same instance name. The responders never browse.

use std::net::IpAddr;
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, RRType, Receiver, ServiceDaemon, ServiceInfo, TxtProperty};

use super::{Advertisement, Advertiser, DnssdError, Event, Service};
use crate::codec::dnssd_txt;

pub struct EmbeddedAdvertiser {
    /// e.g. `pi.local.` (with the trailing dot mdns-sd wants).
    host: String,
    /// Responder `k` publishes subtype `k` of every service; responder 0 also the ones without.
    responders: Vec<ServiceDaemon>,
    events: Option<Receiver<DaemonEvent>>,
    published: Option<Advertisement>,
    /// Lower-case full names registered with responder 0.
    fullnames: Vec<String>,
    established: bool,
    collided: bool,
}

impl EmbeddedAdvertiser {
    /// A responder for `<host name>.local`, the machine's host name made a DNS label.
    pub fn new() -> Result<EmbeddedAdvertiser, DnssdError> {
        let host = format!("{}.local.", dnssd_txt::host_label(&machine_host_name()));
        Ok(EmbeddedAdvertiser {
            host,
            responders: Vec::new(),
            events: None,
            published: None,
            fullnames: Vec::new(),
            established: false,
            collided: false,
        })
    }

    /// Stops every responder; each sends goodbye packets for what it published.
    async fn stop(&mut self) {
        self.events = None;
        for d in self.responders.drain(..) {
            match d.shutdown() {
                Ok(done) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
                }
                Err(e) => tracing::debug!("DNS-SD: mdns-sd shutdown: {e}"),
            }
        }
    }

    /// The `ServiceInfo` of `s` with subtype number `k` (none if `s` has no subtypes).
    fn info(
        &self,
        name: &str,
        s: &Service,
        k: usize,
        probe: bool,
    ) -> Result<ServiceInfo, DnssdError> {
        let ty = match s.subtypes.get(k) {
            Some(sub) => format!("{sub}._sub.{}.local.", s.service_type),
            None => format!("{}.local.", s.service_type),
        };
        let txt: Vec<TxtProperty> = s
            .txt
            .iter()
            .map(|e| TxtProperty::from((e.key, e.value.as_bytes())))
            .collect();
        // Checked here as well: mdns-sd would cut a long string silently.
        dnssd_txt::to_strings(&s.txt)?;
        let no_addresses: &[IpAddr] = &[];
        let mut info = ServiceInfo::new(&ty, name, &self.host, no_addresses, s.port, txt)?
            // Every address of every interface, IPv4 and IPv6, kept current as they change.
            .enable_addr_auto();
        info.set_requires_probe(probe);
        Ok(info)
    }

    /// Publishes the extra subtypes once responder 0 owns the name.
    fn start_extra_responders(&mut self) -> Result<(), DnssdError> {
        let Some(ad) = self.published.clone() else {
            return Ok(());
        };
        let extra = ad
            .services
            .iter()
            .map(|s| s.subtypes.len())
            .max()
            .unwrap_or(0);
        for k in 1..extra {
            let d = responder()?;
            for s in ad.services.iter().filter(|s| s.subtypes.len() > k) {
                d.register(self.info(&ad.name, s, k, false)?)?;
            }
            self.responders.push(d);
        }
        Ok(())
    }
}

/// A responder on every interface but loopback (mdns-sd includes loopback by default; a name
/// "won" there, where no other responder listens, would look established before the LAN's probes
/// are answered).
fn responder() -> Result<ServiceDaemon, DnssdError> {
    let d = ServiceDaemon::new()?;
    d.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
    Ok(d)
}

/// The kernel's host name (uname nodename).
fn machine_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; gethostname NUL-terminates within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Advertiser for EmbeddedAdvertiser {
    fn host_name(&self) -> String {
        self.host.trim_end_matches('.').to_string()
    }

    async fn register(&mut self, ad: &Advertisement) -> Result<(), DnssdError> {
        // New responders each time: no event about an older name can be taken for this one.
        self.stop().await;
        self.published = None;
        self.established = false;
        self.collided = false;
        let d = responder()?;
        let events = d.monitor()?;
        self.fullnames.clear();
        for s in &ad.services {
            let info = self.info(&ad.name, s, 0, true)?;
            self.fullnames.push(info.get_fullname().to_lowercase());
            d.register(info)?;
        }
        self.responders.push(d);
        self.events = Some(events);
        self.published = Some(ad.clone());
        Ok(())
    }

    async fn update(&mut self, ad: &Advertisement) -> Result<(), DnssdError> {
        let same = self.published.as_ref().is_some_and(|p| p.same_shape(ad));
        if !same || self.responders.is_empty() {
            return self.register(ad).await;
        }
        // The name is settled once announced: new TXT records go out at once, without probing
        // again (a probe would see the other responder's older TXT as a conflict).
        let probe = !self.established;
        for (k, d) in self.responders.iter().enumerate() {
            for s in &ad.services {
                if k == 0 || s.subtypes.len() > k {
                    d.register(self.info(&ad.name, s, k, probe && k == 0)?)?;
                }
            }
        }
        self.published = Some(ad.clone());
        Ok(())
    }

    async fn withdraw(&mut self) -> Result<(), DnssdError> {
        self.stop().await;
        self.published = None;
        Ok(())
    }

    async fn next_event(&mut self) -> Event {
        loop {
            let Some(events) = self.events.as_ref() else {
                return std::future::pending().await;
            };
            let ev = match events.recv_async().await {
                Ok(ev) => ev,
                Err(_) => {
                    self.events = None;
                    return Event::Failed("the mDNS responder stopped".into());
                }
            };
            if !matches!(ev, DaemonEvent::Respond(_)) {
                tracing::debug!("DNS-SD: mdns-sd event {ev:?}");
            }
            match ev {
                DaemonEvent::NameChange(c) if !self.collided => {
                    let original = c.original.to_lowercase();
                    let ours = self.fullnames.contains(&original);
                    if ours && matches!(c.rr_type, RRType::SRV | RRType::TXT) {
                        tracing::debug!(
                            "DNS-SD: {} conflicts, renamed to {}",
                            c.original,
                            c.new_name
                        );
                        self.collided = true;
                        return Event::Collision;
                    }
                    if matches!(c.rr_type, RRType::A | RRType::AAAA)
                        && original == self.host.to_lowercase()
                    {
                        tracing::info!(
                            "DNS-SD: host name {} is taken; using {}",
                            self.host,
                            c.new_name
                        );
                        self.host = c.new_name;
                        self.collided = true;
                        return Event::Republish;
                    }
                }
                // The first service announced under the name asked for: the name is ours.
                DaemonEvent::Announce(fullname, _)
                    if !self.established
                        && !self.collided
                        && self.fullnames.first() == Some(&fullname.to_lowercase()) =>
                {
                    self.established = true;
                    if let Err(e) = self.start_extra_responders() {
                        return Event::Failed(e.to_string());
                    }
                    return Event::Established;
                }
                DaemonEvent::Error(e) => tracing::warn!("DNS-SD: mdns-sd: {e}"),
                _ => {}
            }
        }
    }
}
