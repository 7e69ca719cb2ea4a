//! The appliance's client of the cloud's held-jobs API (print-anywhere, issue 18; docs/release.md
//! "Print-anywhere"): a user who signs in on the release page with their cloud credentials sees
//! the jobs held on their follow-me queue and releases one to this appliance's cloud printer.
//!
//! The user's token is a cloud session token (`POST /api/v1/session`): the caller keeps it only
//! in memory for the release-page session and ends it with [`sign_out`]. Answers are untrusted:
//! bounded by [`CloudHttp`], parsed strictly, and every status mapped to one [`FollowMeError`].

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::{Answer, CloudHttp, HttpError};

/// Jobs one listing may hold (the cloud answers far fewer); more is a broken answer.
const MAX_JOBS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum FollowMeError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Wrong e-mail or password, or the token is no longer valid (signed out, expired).
    #[error("the cloud did not accept the sign-in")]
    Unauthorized,
    /// Too many failed sign-ins: try again later.
    #[error("too many failed attempts; try again later")]
    Throttled,
    /// Not the user's job (or no such job): the cloud never says which.
    #[error("no such held job")]
    NotFound,
    /// The printer is not one the user may release to (not IN in their group, not allowed).
    #[error("the job cannot be released to this printer: {0}")]
    Forbidden(String),
    /// Already released (perhaps at the same moment elsewhere), deleted or expired.
    #[error("the job was already released or deleted")]
    NotHeld,
    #[error("the cloud answered {status}: {description}")]
    Unexpected { status: u16, description: String },
    #[error("the cloud's answer is not the JSON expected: {0}")]
    BadAnswer(String),
}

/// A user's cloud session token. Its `Debug` never shows it; it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken(String);

impl UserToken {
    pub fn new(token: String) -> UserToken {
        UserToken(token)
    }

    /// The secret, for the Authorization header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserToken(..)")
    }
}

/// A job held on the user's follow-me queue in the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeldCloudJob {
    pub id: i64,
    pub name: String,
    pub pages: Option<i64>,
    /// Unix seconds.
    pub created: i64,
    /// Bytes of its documents.
    pub size: i64,
}

/// What a release made: the job on the target printer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Released {
    pub job: i64,
    pub printer: String,
    pub printer_job_id: i64,
}

#[derive(Deserialize)]
struct JobList {
    jobs: Vec<HeldCloudJob>,
}

#[derive(Deserialize)]
struct SessionAnswer {
    token: String,
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// The error an answer that is not a success stands for.
fn refusal(a: &Answer) -> FollowMeError {
    let description = serde_json::from_slice::<serde_json::Value>(&a.body)
        .ok()
        .and_then(|v| v["error_description"].as_str().map(str::to_string))
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    match a.status {
        401 => FollowMeError::Unauthorized,
        403 => FollowMeError::Forbidden(description),
        404 => FollowMeError::NotFound,
        409 => FollowMeError::NotHeld,
        429 => FollowMeError::Throttled,
        status => FollowMeError::Unexpected {
            status,
            description,
        },
    }
}

fn parse<T: serde::de::DeserializeOwned>(a: &Answer) -> Result<T, FollowMeError> {
    serde_json::from_slice(&a.body)
        .map_err(|e| FollowMeError::BadAnswer(e.to_string().chars().take(200).collect::<String>()))
}

/// `POST /api/v1/session` with the user's cloud e-mail and password. The cloud also runs the
/// group sign-in of the account (specs/groups.md), as for a PC's login.
pub async fn sign_in(
    http: &CloudHttp,
    base: &str,
    email: &str,
    password: &str,
) -> Result<UserToken, FollowMeError> {
    let a = http
        .post_json(
            &url(base, "/api/v1/session"),
            None,
            &json!({"email": email, "password": password}),
        )
        .await?;
    if a.status != 200 {
        return Err(refusal(&a));
    }
    let s: SessionAnswer = parse(&a)?;
    if s.token.is_empty() || s.token.len() > 512 {
        return Err(FollowMeError::BadAnswer("no session token".into()));
    }
    Ok(UserToken(s.token))
}

/// `DELETE /api/v1/session`: ends the session (at the release page's sign-out or expiry).
pub async fn sign_out(
    http: &CloudHttp,
    base: &str,
    user_token: &UserToken,
) -> Result<(), FollowMeError> {
    let a = http
        .send_json(
            Method::DELETE,
            &url(base, "/api/v1/session"),
            Some(user_token.secret()),
            None,
        )
        .await?;
    match a.status {
        200..=299 | 401 => Ok(()),
        _ => Err(refusal(&a)),
    }
}

/// `GET /api/v1/held-jobs`: the user's held jobs, oldest first.
pub async fn list_held(
    http: &CloudHttp,
    base: &str,
    user_token: &UserToken,
) -> Result<Vec<HeldCloudJob>, FollowMeError> {
    let a = http
        .get(&url(base, "/api/v1/held-jobs"), Some(user_token.secret()))
        .await?;
    if a.status != 200 {
        return Err(refusal(&a));
    }
    let list: JobList = parse(&a)?;
    if list.jobs.len() > MAX_JOBS {
        return Err(FollowMeError::BadAnswer(format!(
            "more than {MAX_JOBS} jobs"
        )));
    }
    Ok(list.jobs)
}

/// `POST /api/v1/held-jobs/{job}/release {"printer": printer_id}`: the job becomes a job of that
/// Infrastructure Printer (the one this appliance's `cloud_share` queue proxies), once.
pub async fn release(
    http: &CloudHttp,
    base: &str,
    user_token: &UserToken,
    job: i64,
    printer_id: &str,
) -> Result<Released, FollowMeError> {
    let a = http
        .post_json(
            &url(base, &format!("/api/v1/held-jobs/{job}/release")),
            Some(user_token.secret()),
            &json!({ "printer": printer_id }),
        )
        .await?;
    if a.status != 200 {
        return Err(refusal(&a));
    }
    parse(&a)
}

/// `DELETE /api/v1/held-jobs/{job}`: deletes the held job unprinted.
pub async fn delete(
    http: &CloudHttp,
    base: &str,
    user_token: &UserToken,
    job: i64,
) -> Result<(), FollowMeError> {
    let a = http
        .send_json(
            Method::DELETE,
            &url(base, &format!("/api/v1/held-jobs/{job}")),
            Some(user_token.secret()),
            None,
        )
        .await?;
    if (200..300).contains(&a.status) {
        Ok(())
    } else {
        Err(refusal(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "application/json".into(),
            body: bytes::Bytes::from(body.to_string()),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        let e = refusal(&answer(
            403,
            r#"{"error":"forbidden","error_description":"not\nIN"}"#,
        ));
        assert!(matches!(e, FollowMeError::Forbidden(d) if d == "notIN"));
        assert!(matches!(refusal(&answer(409, "")), FollowMeError::NotHeld));
        assert!(matches!(
            refusal(&answer(404, "x")),
            FollowMeError::NotFound
        ));
        assert!(matches!(
            refusal(&answer(401, "")),
            FollowMeError::Unauthorized
        ));
        assert!(matches!(
            refusal(&answer(502, "<html>")),
            FollowMeError::Unexpected { status: 502, .. }
        ));
    }

    #[test]
    fn listing_is_parsed_strictly_and_the_token_is_not_shown() {
        let a = answer(
            200,
            r#"{"jobs":[{"id":3,"name":"a.pdf","pages":null,"created":5,"size":10}]}"#,
        );
        let l: JobList = parse(&a).unwrap();
        assert_eq!(l.jobs[0].id, 3);
        assert_eq!(l.jobs[0].pages, None);
        assert!(parse::<JobList>(&answer(200, r#"{"jobs":[{"id":"x"}]}"#)).is_err());
        assert_eq!(
            format!("{:?}", UserToken::new("s3cret".into())),
            "UserToken(..)"
        );
    }
}
