//! The texts of the mails printbridge sends. Pure: the caller fills in the facts; no secret but the
//! one-time link the recipient needs ever goes into a mail (registration spec, "Security").

use super::Mail;

/// What an enrolment mail says about the device the user was approved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentFacts<'a> {
    pub organisation: &'a str,
    pub device_name: &'a str,
    pub make_and_model: &'a str,
    pub location: &'a str,
    /// The one-time set-password link.
    pub link: &'a str,
    /// How long the link stays valid, in hours (rounded up).
    pub valid_hours: i64,
}

/// The enrolment mail to a user the cloud did not know yet (registration spec A6).
pub fn enrolment(to: &str, f: &EnrolmentFacts<'_>) -> Mail {
    let device = if f.device_name.is_empty() {
        "a printer".to_string()
    } else {
        format!("the printer \"{}\"", one_line(f.device_name))
    };
    let mut details = String::new();
    if !f.make_and_model.is_empty() {
        details.push_str(&format!("  Model:    {}\n", one_line(f.make_and_model)));
    }
    if !f.location.is_empty() {
        details.push_str(&format!("  Location: {}\n", one_line(f.location)));
    }
    Mail {
        to: to.to_string(),
        subject: format!("Set your password to print at {}", one_line(f.organisation)),
        body: format!(
            "Hello,\n\n\
             an administrator of {org} allowed you to print on {device}.\n\
             {details}\n\
             To start printing, choose your password here (the link works once, for {hours} \
             hours):\n\n  {link}\n\n\
             Until you do, the printer will not accept jobs from you.\n\
             If you did not ask for this, ignore this mail; nothing happens.\n",
            org = one_line(f.organisation),
            hours = f.valid_hours.max(1),
            link = f.link,
        ),
    }
}

/// Device-supplied text (a name, a location) on one line: a newline could forge mail text.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_mail_carries_the_link_and_the_device() {
        let m = enrolment(
            "bob@example.com",
            &EnrolmentFacts {
                organisation: "Acme",
                device_name: "Front desk\r\nBcc: x@evil",
                make_and_model: "printbridge",
                location: "2nd floor",
                link: "https://cloud.example/set-password?token=abc",
                valid_hours: 24,
            },
        );
        assert_eq!(m.to, "bob@example.com");
        assert_eq!(m.subject, "Set your password to print at Acme");
        assert!(m
            .body
            .contains("  https://cloud.example/set-password?token=abc\n"));
        assert!(m.body.contains("\"Front desk  Bcc: x@evil\""));
        assert!(m.body.contains("Location: 2nd floor"));
        assert!(m.body.contains("for 24 hours"));
    }
}
