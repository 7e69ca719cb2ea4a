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
        html: None,
    }
}

/// What the administrator's mail about a registration request says (spec A4). Only the user
/// code and the verification URL: never the device_code or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationFacts<'a> {
    pub user_email: &'a str,
    pub user_code: &'a str,
    /// `verification_uri_complete` where the cloud gave one, else `verification_uri`.
    pub url: &'a str,
    pub appliance_name: &'a str,
    pub make_and_model: &'a str,
    pub uuid: &'a str,
    pub location: &'a str,
    /// When the code expires, e.g. "2026-12-06 23:10 UTC".
    pub expires: &'a str,
    /// Code k of at most `codes_allowed`; k > 1 replaces the previous code.
    pub code_number: u32,
    pub codes_allowed: u32,
}

/// The one mail to the administrator per code (registration spec A4), text and HTML.
pub fn registration_request(to: &str, f: &RegistrationFacts<'_>) -> Mail {
    let replaces = f.code_number > 1;
    let rows = [
        ("User", one_line(f.user_email)),
        ("Code", one_line(f.user_code)),
        ("Printer", one_line(f.appliance_name)),
        ("Model", one_line(f.make_and_model)),
        ("UUID", one_line(f.uuid)),
        ("Location", one_line(f.location)),
        ("Code expires", one_line(f.expires)),
    ];
    let (details, html_rows) = detail_rows(&rows, 13);
    let lead = if replaces {
        format!(
            "The previous code expired; this new code REPLACES it (code {} of at most {}).",
            f.code_number, f.codes_allowed
        )
    } else {
        "A user asked to print through this printer with the cloud print service.".to_string()
    };
    let url = one_line(f.url);
    let body = format!(
        "Hello,\n\n{lead}\n\n{details}\n\
         To allow it, open this address, sign in as an administrator and approve the code:\n\n\
         \x20 {url}\n\n\
         If you do nothing, the request lapses when the code expires.\n"
    );
    let html = format!(
        "<!DOCTYPE html><html><body><p>Hello,</p><p>{lead}</p><table>\n{html_rows}</table>\
         <p>To allow it, open <a href=\"{href}\">{text}</a>, sign in as an administrator and \
         approve the code.</p><p>If you do nothing, the request lapses when the code expires.</p>\
         </body></html>\n",
        lead = html_escape(&lead),
        href = html_escape(&url),
        text = html_escape(&url),
    );
    let subject = if replaces {
        format!(
            "New printer registration code {} for {} (replaces the previous one)",
            one_line(f.user_code),
            one_line(f.user_email)
        )
    } else {
        format!(
            "Printer registration code {} for {}",
            one_line(f.user_code),
            one_line(f.user_email)
        )
    };
    Mail {
        to: to.to_string(),
        subject,
        body,
        html: Some(html),
    }
}

/// What the administrator's mail about an access request says (spec A2, appliance registered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFacts<'a> {
    pub user_email: &'a str,
    /// Where the administrator grants it (the cloud's admin page).
    pub url: &'a str,
    pub appliance_name: &'a str,
    pub make_and_model: &'a str,
    pub uuid: &'a str,
    pub location: &'a str,
    pub expires: &'a str,
}

/// The one mail to the administrator about an access request, text and HTML.
pub fn access_request(to: &str, f: &AccessFacts<'_>) -> Mail {
    let rows = [
        ("User", one_line(f.user_email)),
        ("Printer", one_line(f.appliance_name)),
        ("Model", one_line(f.make_and_model)),
        ("UUID", one_line(f.uuid)),
        ("Location", one_line(f.location)),
        ("Request expires", one_line(f.expires)),
    ];
    let (details, html_rows) = detail_rows(&rows, 16);
    let url = one_line(f.url);
    Mail {
        to: to.to_string(),
        subject: format!(
            "{} asks to print on {}",
            one_line(f.user_email),
            one_line(f.appliance_name)
        ),
        body: format!(
            "Hello,\n\na user asks to print through this registered printer:\n\n{details}\n\
             To allow or deny it, sign in as an administrator here:\n\n  {url}\n"
        ),
        html: Some(format!(
            "<!DOCTYPE html><html><body><p>Hello,</p><p>a user asks to print through this \
             registered printer:</p><table>\n{html_rows}</table><p>To allow or deny it, sign in \
             as an administrator at <a href=\"{u}\">{u}</a>.</p></body></html>\n",
            u = html_escape(&url)
        )),
    }
}

/// The outcome mail to the user who asked (spec A7): `outcome` is "completed", "denied" or
/// "failed: REASON".
pub fn registration_outcome(to: &str, appliance_name: &str, outcome: &str) -> Mail {
    let printer = one_line(appliance_name);
    let text = match outcome {
        "completed" => format!(
            "your registration of the printer \"{printer}\" with the cloud print service is \
             complete. You can print through it now."
        ),
        "denied" => format!(
            "the administrator denied your registration of the printer \"{printer}\" with the \
             cloud print service."
        ),
        other => format!(
            "your registration of the printer \"{printer}\" with the cloud print service did not \
             complete ({}).",
            one_line(other)
        ),
    };
    Mail {
        to: to.to_string(),
        subject: format!("Printer registration: {}", one_line(outcome)),
        body: format!("Hello,\n\n{text}\n"),
        html: None,
    }
}

/// The non-empty `(label, value)` rows of a mail, as aligned text lines (labels padded to
/// `width`) and as HTML table rows, both escaped for their part.
fn detail_rows(rows: &[(&str, String)], width: usize) -> (String, String) {
    let mut text = String::new();
    let mut html = String::new();
    for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        text.push_str(&format!("  {:<width$} {v}\n", format!("{k}:")));
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            html_escape(k),
            html_escape(v)
        ));
    }
    (text, html)
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
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

    #[test]
    fn registration_mail_has_code_url_user_and_device_and_no_secrets() {
        let m = registration_request(
            "ann@example.com",
            &RegistrationFacts {
                user_email: "bob@example.com",
                user_code: "BCDF-GHJK",
                url: "https://cloud.example/device?user_code=BCDF-GHJK",
                appliance_name: "Front <desk>",
                make_and_model: "printbridge",
                uuid: "urn:uuid:1",
                location: "2nd floor",
                expires: "2026-12-06 23:10 UTC",
                code_number: 2,
                codes_allowed: 4,
            },
        );
        assert!(m.subject.contains("BCDF-GHJK") && m.subject.contains("replaces"));
        for part in [&m.body, m.html.as_ref().unwrap()] {
            assert!(part.contains("BCDF-GHJK"));
            assert!(part.contains("https://cloud.example/device?user_code=BCDF-GHJK"));
            assert!(part.contains("bob@example.com"));
            assert!(part.contains("2nd floor"));
            assert!(part.contains("REPLACES"));
        }
        assert!(m.html.unwrap().contains("Front &lt;desk&gt;"));
        let o = registration_outcome(
            "bob@example.com",
            "Front desk",
            "failed: code expired 4 times",
        );
        assert!(o.body.contains("code expired 4 times"));
    }
}
