//! A raw-socket (AppSocket/JetDirect, port 9100 style) "printer" for tests: every connection is
//! read to its end and kept, so a test can count the jobs that reached it and read their bytes.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct SocketPrinter {
    pub port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SocketPrinter {
    /// Listens on a free loopback port.
    pub fn start() -> SocketPrinter {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Listens on `port` of loopback, e.g. where a test first had nothing listening.
    pub fn start_on_port(port: u16) -> SocketPrinter {
        Self::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap())
    }

    pub fn start_on(listener: TcpListener) -> SocketPrinter {
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut bytes = Vec::new();
                // Reads until the appliance half-closes; dropping `conn` then closes our side.
                let _ = conn.read_to_end(&mut bytes);
                keep.lock().unwrap().push(bytes);
            }
        });
        SocketPrinter { port, received }
    }

    /// The bytes of every connection so far, in the order they ended.
    pub fn jobs(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}
