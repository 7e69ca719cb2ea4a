//! Publishing through the system's Avahi daemon over D-Bus (avahi-daemon's
//! `org.freedesktop.Avahi.Server` and `org.freedesktop.Avahi.EntryGroup` interfaces): one
//! responder per host, any number of subtypes per service, and name conflicts detected by the
//! daemon and reported as entry group state changes.
//!
//! Entry group states (avahi-common/defs.h): 0 uncommitted, 1 registering, 2 established,
//! 3 collision, 4 failure. Server states: 0 invalid, 1 registering, 2 running, 3 collision,
//! 4 failure.
//!
//! The system bus itself can go (a dbus package upgrade restarts it; a container may stop it).
//! Then the connection closes and every signal stream ends: that is [`Event::Lost`], and this
//! advertiser is finished; [`super::run`] connects again with back-off. Every method call has a
//! deadline, so a bus that hangs rather than closes cannot hold a caller for long either.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::proxy::{Builder, CacheProperties, SignalStream};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::{Connection, Proxy};

use super::{Advertisement, Advertiser, DnssdError, Event};
use crate::codec::dnssd_txt;

const AVAHI: &str = "org.freedesktop.Avahi";
/// AVAHI_IF_UNSPEC and AVAHI_PROTO_UNSPEC: every interface, IPv4 and IPv6.
const IF_UNSPEC: i32 = -1;
const PROTO_UNSPEC: i32 = -1;
const GROUP_ESTABLISHED: i32 = 2;
const GROUP_COLLISION: i32 = 3;
const GROUP_FAILURE: i32 = 4;
const SERVER_REGISTERING: i32 = 1;
const SERVER_RUNNING: i32 = 2;
const SERVER_COLLISION: i32 = 3;
const SERVER_FAILURE: i32 = 4;

/// How long connecting to the bus and asking Avahi whether it runs may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one D-Bus method call may wait for its answer (zbus waits forever by default).
const METHOD_TIMEOUT: Duration = Duration::from_secs(5);

pub struct AvahiAdvertiser {
    conn: Connection,
    server: Proxy<'static>,
    server_states: SignalStream<'static>,
    owner_changes: SignalStream<'static>,
    group: Option<Group>,
    host: String,
}

/// One entry group: everything published for the printer.
struct Group {
    proxy: Proxy<'static>,
    states: SignalStream<'static>,
    ad: Advertisement,
}

async fn proxy(
    conn: &Connection,
    destination: &'static str,
    path: ObjectPath<'static>,
    interface: &'static str,
) -> Result<Proxy<'static>, zbus::Error> {
    Builder::new(conn)
        .destination(destination)?
        .path(path)?
        .interface(interface)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// A D-Bus error from Avahi, with the local-collision case told apart.
fn avahi_error(e: zbus::Error) -> DnssdError {
    match &e {
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.Avahi.CollisionError" =>
        {
            DnssdError::Collision
        }
        zbus::Error::MethodError(name, msg, _) => DnssdError::Avahi(format!(
            "{}{}",
            name.as_str(),
            msg.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        )),
        _ => DnssdError::DBus(e),
    }
}

impl AvahiAdvertiser {
    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or the standard socket) and checks
    /// that `org.freedesktop.Avahi` is there and running.
    pub async fn connect() -> Result<AvahiAdvertiser, DnssdError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_now())
            .await
            .map_err(|_| DnssdError::Timeout("connecting to the system bus"))?
    }

    async fn connect_now() -> Result<AvahiAdvertiser, DnssdError> {
        let conn = zbus::connection::Builder::system()?
            .method_timeout(METHOD_TIMEOUT)
            .build()
            .await?;
        let bus = proxy(
            &conn,
            "org.freedesktop.DBus",
            ObjectPath::from_static_str_unchecked("/org/freedesktop/DBus"),
            "org.freedesktop.DBus",
        )
        .await?;
        let present: bool = bus.call("NameHasOwner", &(AVAHI,)).await?;
        if !present {
            return Err(DnssdError::NoAvahi);
        }
        let owner_changes = bus
            .receive_signal_with_args("NameOwnerChanged", &[(0, AVAHI)])
            .await?;
        let server = proxy(
            &conn,
            AVAHI,
            ObjectPath::from_static_str_unchecked("/"),
            "org.freedesktop.Avahi.Server",
        )
        .await?;
        let server_states = server.receive_signal("StateChanged").await?;
        let state: i32 = server.call("GetState", &()).await.map_err(avahi_error)?;
        if state != SERVER_RUNNING {
            tracing::info!("DNS-SD: Avahi is not running yet (server state {state})");
        }
        let host: String = server
            .call("GetHostNameFqdn", &())
            .await
            .map_err(avahi_error)?;
        Ok(AvahiAdvertiser {
            conn,
            server,
            server_states,
            owner_changes,
            group: None,
            host,
        })
    }

    async fn free_group(&mut self) -> Result<(), DnssdError> {
        if let Some(g) = self.group.take() {
            g.proxy
                .call::<_, _, ()>("Free", &())
                .await
                .map_err(avahi_error)?;
        }
        Ok(())
    }

    async fn refresh_host(&mut self) {
        match self
            .server
            .call::<_, _, String>("GetHostNameFqdn", &())
            .await
        {
            Ok(h) => self.host = h,
            Err(e) => tracing::warn!("DNS-SD: cannot ask Avahi for the host name: {e}"),
        }
    }

    async fn add_services(
        &self,
        group: &Proxy<'static>,
        ad: &Advertisement,
    ) -> Result<(), DnssdError> {
        for s in &ad.services {
            let txt = dnssd_txt::to_strings(&s.txt)?;
            group
                .call::<_, _, ()>(
                    "AddService",
                    &(
                        IF_UNSPEC,
                        PROTO_UNSPEC,
                        0u32,
                        ad.name.as_str(),
                        s.service_type,
                        "",
                        "",
                        s.port,
                        txt,
                    ),
                )
                .await
                .map_err(avahi_error)?;
            for sub in &s.subtypes {
                let subtype = format!("{sub}._sub.{}", s.service_type);
                group
                    .call::<_, _, ()>(
                        "AddServiceSubtype",
                        &(
                            IF_UNSPEC,
                            PROTO_UNSPEC,
                            0u32,
                            ad.name.as_str(),
                            s.service_type,
                            "",
                            subtype.as_str(),
                        ),
                    )
                    .await
                    .map_err(avahi_error)?;
            }
        }
        group
            .call::<_, _, ()>("Commit", &())
            .await
            .map_err(avahi_error)
    }
}

impl Advertiser for AvahiAdvertiser {
    fn host_name(&self) -> String {
        self.host.trim_end_matches('.').to_string()
    }

    async fn register(&mut self, ad: &Advertisement) -> Result<(), DnssdError> {
        // A fresh group each time, so that no state change of an older one is mistaken for ours.
        self.free_group().await?;
        let path: OwnedObjectPath = self
            .server
            .call("EntryGroupNew", &())
            .await
            .map_err(avahi_error)?;
        let group = proxy(
            &self.conn,
            AVAHI,
            path.into_inner(),
            "org.freedesktop.Avahi.EntryGroup",
        )
        .await?;
        let states = group.receive_signal("StateChanged").await?;
        let added = self.add_services(&group, ad).await;
        if added.is_err() {
            let _ = group.call::<_, _, ()>("Free", &()).await;
            return added;
        }
        self.group = Some(Group {
            proxy: group,
            states,
            ad: ad.clone(),
        });
        Ok(())
    }

    async fn update(&mut self, ad: &Advertisement) -> Result<(), DnssdError> {
        let Some(g) = self.group.as_mut().filter(|g| g.ad.same_shape(ad)) else {
            return self.register(ad).await;
        };
        for (s, old) in ad.services.iter().zip(&g.ad.services) {
            if s.txt == old.txt {
                continue;
            }
            let txt = dnssd_txt::to_strings(&s.txt)?;
            g.proxy
                .call::<_, _, ()>(
                    "UpdateServiceTxt",
                    &(
                        IF_UNSPEC,
                        PROTO_UNSPEC,
                        0u32,
                        ad.name.as_str(),
                        s.service_type,
                        "",
                        txt,
                    ),
                )
                .await
                .map_err(avahi_error)?;
        }
        g.ad = ad.clone();
        Ok(())
    }

    async fn withdraw(&mut self) -> Result<(), DnssdError> {
        self.free_group().await
    }

    async fn next_event(&mut self) -> Event {
        enum Got {
            Group((i32, String)),
            Server(i32, String),
            Owner(String),
            /// A stream ended or the connection closed: the bus is gone.
            Closed,
            /// A signal whose body is not what the interface says; ignored.
            Nothing,
        }
        loop {
            // A stream that has ended answers every poll with `None` at once. Taking that for
            // "nothing to report" and polling again was a loop that never yielded: a runtime
            // thread at 100% and a task that no shutdown could reach (issue 11). An ended stream
            // ends this advertiser instead.
            let got = {
                let Self {
                    conn,
                    group,
                    server_states,
                    owner_changes,
                    ..
                } = self;
                let group_state = async {
                    match group.as_mut() {
                        Some(g) => g.states.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = conn.closed() => Got::Closed,
                    m = group_state => match m {
                        None => Got::Closed,
                        Some(m) => match m.body().deserialize::<(i32, String)>() {
                            Ok(v) => Got::Group(v),
                            Err(_) => Got::Nothing,
                        },
                    },
                    m = server_states.next() => match m {
                        None => Got::Closed,
                        Some(m) => match m.body().deserialize::<(i32, String)>() {
                            Ok((state, error)) => Got::Server(state, error),
                            Err(_) => Got::Nothing,
                        },
                    },
                    m = owner_changes.next() => match m {
                        None => Got::Closed,
                        Some(m) => match m.body().deserialize::<(String, String, String)>() {
                            Ok((_, _, new_owner)) => Got::Owner(new_owner),
                            Err(_) => Got::Nothing,
                        },
                    },
                }
            };
            match got {
                Got::Nothing => {}
                Got::Closed => {
                    self.group = None;
                    return Event::Lost("the connection to the system bus closed".into());
                }
                Got::Group((state, error)) => match state {
                    GROUP_ESTABLISHED => return Event::Established,
                    GROUP_COLLISION => return Event::Collision,
                    GROUP_FAILURE => return Event::Failed(error),
                    _ => {}
                },
                Got::Server(state, error) => match state {
                    SERVER_RUNNING => {
                        // Running again after a host name conflict: the host may be new.
                        self.refresh_host().await;
                        return Event::Republish;
                    }
                    SERVER_REGISTERING | SERVER_COLLISION => {
                        // As Avahi's own clients do: drop the group while the daemon sorts its
                        // host name out, and publish again once it runs.
                        tracing::info!("DNS-SD: Avahi is re-registering its host name");
                        if let Err(e) = self.free_group().await {
                            tracing::debug!("DNS-SD: cannot free the entry group: {e}");
                        }
                    }
                    SERVER_FAILURE => return Event::Failed(error),
                    _ => {}
                },
                Got::Owner(new_owner) => {
                    // Our entry group died with the old daemon.
                    self.group = None;
                    if new_owner.is_empty() {
                        tracing::warn!("DNS-SD: Avahi left the system bus; waiting for it");
                    } else {
                        tracing::info!("DNS-SD: Avahi is back; publishing again");
                        self.refresh_host().await;
                        return Event::Republish;
                    }
                }
            }
        }
    }
}
