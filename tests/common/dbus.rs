//! A private D-Bus system bus for tests: ippeveprinter (through libcups' DNS-SD code) will not
//! start without a system bus, and the tests must not need or touch the machine's own.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private D-Bus system bus, killed on drop.
pub struct DbusBus {
    child: Child,
    /// `unix:path=...`, for DBUS_SYSTEM_BUS_ADDRESS.
    pub address: String,
}

impl DbusBus {
    /// Starts `dbus-daemon` with a permissive system-bus policy on a socket in `dir`.
    pub fn start(dir: &Path) -> DbusBus {
        let daemon = super::require_program("dbus-daemon", "dbus-daemon");
        fs::create_dir_all(dir).unwrap();
        let socket = dir.join("bus.sock");
        // A bus killed before (a test that stops the bus and starts it again) leaves its socket
        // file, which would pass for this one's before it listens.
        let _ = fs::remove_file(&socket);
        let config = dir.join("bus.conf");
        fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("dbus.log")).unwrap();
        let mut child = Command::new(daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dbus-daemon");
        if !super::wait_until(Duration::from_secs(10), || socket.exists()) {
            let _ = child.kill();
            panic!(
                "dbus-daemon did not create {} within 10 s:\n{}",
                socket.display(),
                fs::read_to_string(dir.join("dbus.log")).unwrap_or_default()
            );
        }
        DbusBus {
            child,
            address: format!("unix:path={}", socket.display()),
        }
    }
}

impl Drop for DbusBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
