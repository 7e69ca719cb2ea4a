//! Print-anywhere (issue 18, docs/release.md "Print-anywhere") with real processes: one
//! `printbridge cloud` (SQLite, or PostgreSQL with a second instance on the same database) and
//! two appliances, PRINTER 100 and PRINTER 101, each with one `cloud_share = true` queue
//! printing into a file directory, registered through their registration agents for accounts A
//! and B (tests/common/groups.rs). Account A prints to its follow-me queue `/ipp/follow-me`
//! (raw IPP, HTTP Basic or its session's Bearer token); the job is held in the cloud and reaches
//! no printer until A releases it (the held-jobs API, the portal page `/account/held`, or group
//! sign-in); then it prints on the printer it was released to only, exactly once — also when two
//! releases race (one 200, one 409), on one instance or on two sharing PostgreSQL.

mod common;

use std::sync::Barrier;
use std::time::Duration;

use common::bridge::{basic, pdf_doc, submit_to, TripDoc};
use common::cloud::{cloud_cmd, spawn_listening, CloudProc, Http, Resp};
use common::groups::{row, sql_text, GroupOptions, Groups, ACCOUNT_A, ACCOUNT_B};
use common::wait_until;
use serde_json::{json, Value as Json};

const FOLLOW_ME: &str = "/ipp/follow-me";

fn two_printers(postgresql: bool) -> Groups {
    Groups::start(GroupOptions {
        postgresql,
        printers: 2,
    })
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Print-Job of `doc` to the follow-me queue of the cloud at `base` with `auth`: the job id.
fn hold(base: &str, user: &str, auth: &str, doc: &TripDoc) -> i64 {
    let id = submit_to(port_of(base), FOLLOW_ME, user, doc, Some(auth))
        .unwrap_or_else(|e| panic!("Print-Job to the follow-me queue: {e}"));
    i64::from(id)
}

/// A JSON request to the cloud at `base` with a Bearer token.
fn call(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Json>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let text = body.map(Json::to_string).unwrap_or_default();
    Http::new(base.trim_start_matches("http://")).send(
        method,
        path,
        &headers,
        body.map(|_| "application/json"),
        text.as_bytes(),
    )
}

fn release(base: &str, token: &str, job: i64, printer: &str) -> Resp {
    call(
        base,
        "POST",
        &format!("/api/v1/held-jobs/{job}/release"),
        Some(token),
        Some(&json!({ "printer": printer })),
    )
}

/// The held jobs' ids `GET /api/v1/held-jobs` lists for `token`.
fn held(base: &str, token: &str) -> Vec<i64> {
    let r = call(base, "GET", "/api/v1/held-jobs", Some(token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect()
}

/// The Infrastructure jobs named `marker` (job-name = marker): (printer id, job id, state).
fn printer_jobs(g: &Groups, marker: &str) -> Vec<(String, i64, i64)> {
    g.sql(&format!(
        "SELECT printer_id, job_id, state FROM infra_jobs WHERE name = '{}' ORDER BY job_id",
        sql_text(marker)
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].parse().unwrap()))
    .collect()
}

/// Waits until `marker` printed on one of the two printers and its Infrastructure job
/// completed; returns how often it printed on (PRINTER 100, PRINTER 101).
fn wait_printed_once(g: &Groups, marker: &str) -> (usize, usize) {
    let counts = || {
        (
            g.printer(100).printed_count(marker),
            g.printer(101).printed_count(marker),
        )
    };
    let ok = wait_until(Duration::from_secs(180), || {
        let (a, b) = counts();
        let jobs = printer_jobs(g, marker);
        a + b >= 1 && !jobs.is_empty() && jobs.iter().all(|j| j.2 == 9)
    });
    assert!(
        ok,
        "{marker} did not print and complete: printed {:?}, cloud jobs {:?}",
        counts(),
        printer_jobs(g, marker)
    );
    counts()
}

fn token_of(g: &Groups, account: (&str, &str)) -> String {
    g.login(account)["token"].as_str().unwrap().to_string()
}

#[test]
fn a_held_job_prints_only_where_and_when_it_is_released_once() {
    let g = two_printers(false);
    let (p100, p101) = (
        g.printer(100).printer_id.clone(),
        g.printer(101).printer_id.clone(),
    );
    let a = token_of(&g, ACCOUNT_A);
    let b = token_of(&g, ACCOUNT_B);

    // Held: with Basic and with the session's Bearer token, documents of varied sizes.
    let first = pdf_doc("follow-me first", 1);
    let second = pdf_doc("follow-me second", 3);
    let j1 = hold(
        &g.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &first,
    );
    let j2 = hold(&g.base, ACCOUNT_A.0, &format!("Bearer {a}"), &second);
    assert_ne!(j1, j2);
    let mut mine = held(&g.base, &a);
    mine.sort();
    assert_eq!(mine, {
        let mut v = vec![j1, j2];
        v.sort();
        v
    });
    let listing = call(&g.base, "GET", "/api/v1/held-jobs", Some(&a), None).json();
    let job1 = listing["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == j1)
        .unwrap()
        .clone();
    assert_eq!(job1["name"], "follow-me first");
    assert_eq!(job1["size"].as_u64(), Some(first.bytes.len() as u64));
    assert!(job1["created"].as_i64().unwrap() > 0, "{job1}");
    // Held in the cloud: no printer has a job for it.
    assert!(printer_jobs(&g, "follow-me first").is_empty());
    assert!(printer_jobs(&g, "follow-me second").is_empty());

    // Another account sees none of A's jobs and cannot touch them (404, never 403).
    assert!(held(&g.base, &b).is_empty());
    assert_eq!(release(&g.base, &b, j1, &p100).status, 404);
    assert_eq!(
        call(
            &g.base,
            "DELETE",
            &format!("/api/v1/held-jobs/{j1}"),
            Some(&b),
            None
        )
        .status,
        404
    );
    // No credentials, or bad ones: 401, for the API and for the queue.
    assert_eq!(
        call(&g.base, "GET", "/api/v1/held-jobs", None, None).status,
        401
    );
    assert_eq!(
        call(
            &g.base,
            "GET",
            "/api/v1/held-jobs",
            Some("not-a-token"),
            None
        )
        .status,
        401
    );
    assert_eq!(release_unauthenticated(&g.base, j1, &p100), 401);
    let refused = submit_to(
        port_of(&g.base),
        FOLLOW_ME,
        ACCOUNT_A.0,
        &pdf_doc("follow-me unauthenticated", 1),
        None,
    );
    assert_eq!(refused, Err("HTTP 401".to_string()));
    let wrong = submit_to(
        port_of(&g.base),
        FOLLOW_ME,
        ACCOUNT_A.0,
        &pdf_doc("follow-me wrong password", 1),
        Some(&basic(ACCOUNT_A.0, "not the password at all")),
    );
    assert_eq!(wrong, Err("HTTP 401".to_string()));
    // Nonsense ids and printers.
    assert_eq!(release(&g.base, &a, 999_999, &p100).status, 404);
    let odd = call(
        &g.base,
        "POST",
        "/api/v1/held-jobs/x'1/release",
        Some(&a),
        Some(&json!({"printer": p100})),
    );
    assert!(odd.status == 404 || odd.status == 400, "{}", odd.body);
    assert_eq!(release(&g.base, &a, j1, "no-such-printer").status, 403);
    assert_eq!(release(&g.base, &a, j1, "../../etc").status, 403);

    // Released to PRINTER 101: it prints there, once, and nowhere else.
    let r = release(&g.base, &a, j1, &p101);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["job"], j1);
    assert_eq!(v["printer"], p101.as_str());
    let printer_job = v["printer_job_id"].as_i64().unwrap();
    assert_eq!(wait_printed_once(&g, "follow-me first"), (0, 1));
    assert_eq!(
        printer_jobs(&g, "follow-me first"),
        vec![(p101.clone(), printer_job, 9)]
    );
    assert_eq!(held(&g.base, &a), vec![j2]);
    // Replayed, to the same or another printer: 409, and it prints no second time.
    assert_eq!(release(&g.base, &a, j1, &p101).status, 409);
    assert_eq!(release(&g.base, &a, j1, &p100).status, 409);
    assert_eq!(printer_jobs(&g, "follow-me first").len(), 1);

    // A printer A may not use (not allowed, not IN in A's group): 403, the job stays held.
    g.sql(&format!(
        "DELETE FROM printer_users WHERE printer_id = '{}' AND email = '{}'",
        sql_text(&p100),
        ACCOUNT_A.0
    ));
    let r = release(&g.base, &a, j2, &p100);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(held(&g.base, &a), vec![j2]);
    // IN on it in A's group: allowed again.
    g.admin_add(&[row(ACCOUNT_A.0, 100, "IN", "2011-10-01 08:30:00")]);
    let r = release(&g.base, &a, j2, &p100);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(wait_printed_once(&g, "follow-me second"), (1, 0));
    // All three pages of the second document printed.
    let text: String = g
        .printer(100)
        .printed()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for p in 1..=3 {
        assert!(
            text.contains(&format!("follow-me second page {p}")),
            "{text}"
        );
    }

    // Deleted: 204, then it can be released no more and never prints.
    let third = hold(
        &g.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &pdf_doc("follow-me deleted", 2),
    );
    let d = call(
        &g.base,
        "DELETE",
        &format!("/api/v1/held-jobs/{third}"),
        Some(&a),
        None,
    );
    assert_eq!(d.status, 204, "{}", d.body);
    assert_eq!(release(&g.base, &a, third, &p101).status, 409);
    assert!(held(&g.base, &a).is_empty());
    assert!(printer_jobs(&g, "follow-me deleted").is_empty());
    assert_eq!(g.printer(100).printed_count("follow-me deleted"), 0);
    assert_eq!(g.printer(101).printed_count("follow-me deleted"), 0);
}

/// A release with no credentials at all: the HTTP status.
fn release_unauthenticated(base: &str, job: i64, printer: &str) -> u16 {
    call(
        base,
        "POST",
        &format!("/api/v1/held-jobs/{job}/release"),
        None,
        Some(&json!({ "printer": printer })),
    )
    .status
}

/// Two releases of each of `jobs`, at the same moment, one to each printer, through `bases`
/// (one cloud instance, or two): exactly one 200 and one 409 each, and the job prints once,
/// where the winner sent it.
fn race(g: &Groups, bases: [&str; 2], token: &str, jobs: &[(i64, String)]) {
    let targets = [
        g.printer(100).printer_id.clone(),
        g.printer(101).printer_id.clone(),
    ];
    for (job, marker) in jobs {
        let barrier = Barrier::new(2);
        let answers: Vec<Resp> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let (barrier, target, base) = (&barrier, &targets[i], bases[i]);
                    s.spawn(move || {
                        barrier.wait();
                        release(base, token, *job, target)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        statuses.sort();
        assert_eq!(
            statuses,
            vec![200, 409],
            "{marker}: {:?}",
            answers.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        let winner = answers.iter().find(|r| r.status == 200).unwrap().json();
        let (on100, on101) = wait_printed_once(g, marker);
        let want = if winner["printer"] == targets[0].as_str() {
            (1, 0)
        } else {
            (0, 1)
        };
        assert_eq!((on100, on101), want, "{marker}: winner {winner}");
        let jobs = printer_jobs(g, marker);
        assert_eq!(jobs.len(), 1, "{marker}: {jobs:?}");
        assert_eq!(jobs[0].0, winner["printer"].as_str().unwrap());
    }
}

fn hold_several(g: &Groups, prefix: &str, n: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            let marker = format!("{prefix} {i}");
            let id = hold(
                &g.base,
                ACCOUNT_A.0,
                &basic(ACCOUNT_A.0, ACCOUNT_A.1),
                &pdf_doc(&marker, 1 + i % 3),
            );
            (id, marker)
        })
        .collect()
}

#[test]
fn two_simultaneous_releases_print_once_and_group_sign_in_releases_held_jobs() {
    let g = two_printers(false);
    let a = token_of(&g, ACCOUNT_A);
    let jobs = hold_several(&g, "race sqlite", 3);
    race(&g, [&g.base, &g.base], &a, &jobs);
    assert!(held(&g.base, &a).is_empty());

    // "Release held jobs at group sign-in" to PRINTER 100 (IN in A's group).
    g.admin_add(&[row(ACCOUNT_A.0, 100, "IN", "2011-10-01 08:30:00")]);
    let p100 = g.printer(100).printer_id.clone();
    let put = call(
        &g.base,
        "PUT",
        "/api/v1/held-jobs/settings",
        Some(&a),
        Some(&json!({"release_at_sign_in": true, "release_printer": p100})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let got = call(&g.base, "GET", "/api/v1/held-jobs/settings", Some(&a), None).json();
    assert_eq!(got["release_at_sign_in"], true);
    assert_eq!(got["release_printer"], p100.as_str());
    // Turning it on without a printer, or to a printer not allowed: refused.
    let bad = call(
        &g.base,
        "PUT",
        "/api/v1/held-jobs/settings",
        Some(&a),
        Some(&json!({"release_at_sign_in": true, "release_printer": null})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = call(
        &g.base,
        "PUT",
        "/api/v1/held-jobs/settings",
        Some(&a),
        Some(&json!({"release_at_sign_in": true, "release_printer": "nope"})),
    );
    assert_eq!(bad.status, 403, "{}", bad.body);

    let held_now = hold_several(&g, "at sign-in", 2);
    assert_eq!(held(&g.base, &a).len(), 2);
    for (_, marker) in &held_now {
        assert!(printer_jobs(&g, marker).is_empty());
    }
    // B's sign-in releases nothing of A's.
    let _b = token_of(&g, ACCOUNT_B);
    assert_eq!(held(&g.base, &a).len(), 2);
    // A logs in on a PC: both go to PRINTER 100, once.
    let again = token_of(&g, ACCOUNT_A);
    for (_, marker) in &held_now {
        assert_eq!(wait_printed_once(&g, marker), (1, 0), "{marker}");
    }
    assert!(held(&g.base, &again).is_empty());
    // The next sign-in has nothing left to release.
    let _third = token_of(&g, ACCOUNT_A);
    for (_, marker) in &held_now {
        assert_eq!(printer_jobs(&g, marker).len(), 1, "{marker}");
    }
}

#[test]
fn two_cloud_instances_on_postgresql_release_a_job_once() {
    let g = two_printers(true);
    let second: CloudProc = {
        let mut cmd = cloud_cmd(&g.cloud_data, g.database.as_deref(), Some(&g.cloud_config));
        cmd.arg("--listen").arg("127.0.0.1:0");
        spawn_listening(cmd, "cloud 2")
    };
    let a = token_of(&g, ACCOUNT_A);
    // Held through either instance, listed by both.
    let mut jobs = hold_several(&g, "race postgresql", 2);
    let marker = "race postgresql via 2".to_string();
    let id = hold(
        &second.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &pdf_doc(&marker, 2),
    );
    jobs.push((id, marker));
    let mut on1 = held(&g.base, &a);
    let mut on2 = held(&second.base, &a);
    on1.sort();
    on2.sort();
    assert_eq!(on1, on2);
    assert_eq!(on1.len(), 3);
    race(&g, [&g.base, &second.base], &a, &jobs);
    assert!(held(&second.base, &a).is_empty());
}

#[test]
fn the_portal_page_lists_held_jobs_and_prints_one_here() {
    let g = two_printers(false);
    let marker = "portal release";
    let job = hold(
        &g.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &pdf_doc(marker, 1),
    );
    let mut browser = Http::new(g.base.trim_start_matches("http://"));
    // Not signed in: to the sign-in page.
    let r = browser.get("/account/held");
    assert_eq!(r.status, 303, "{}", r.body);
    common::cloud::sign_in(&mut browser, ACCOUNT_A.0, ACCOUNT_A.1);
    let page = browser.get("/account/held");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Your held jobs"), "{}", page.body);
    assert!(page.body.contains(marker), "{}", page.body);
    assert!(page.body.contains(&format!("id=\"job-{job}\"")));
    // The queue's URI to add in the print dialog.
    assert!(
        page.body
            .contains(&format!("ipp://{}{FOLLOW_ME}", g.cloud_listen)),
        "{}",
        page.body
    );
    let p101 = g.printer(101).printer_id.clone();
    assert!(page.body.contains(&format!("value=\"{p101}\"")));
    let csrf = page.field("csrf");
    // A form without the session's CSRF token changes nothing.
    let forged = browser.post_form(
        "/account/held",
        &[
            ("csrf", "forged"),
            ("job", &job.to_string()),
            ("printer", &p101),
            ("action", "release"),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(printer_jobs(&g, marker).is_empty());
    // Print here.
    let r = browser.post_form(
        "/account/held",
        &[
            ("csrf", &csrf),
            ("job", &job.to_string()),
            ("printer", &p101),
            ("action", "release"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Released"), "{}", r.body);
    assert_eq!(wait_printed_once(&g, marker), (0, 1));
    // The same form again (a double tap): 409, still printed once.
    let again = browser.post_form(
        "/account/held",
        &[
            ("csrf", &csrf),
            ("job", &job.to_string()),
            ("printer", &p101),
            ("action", "release"),
        ],
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(printer_jobs(&g, marker).len(), 1);
    let page = browser.get("/account/held");
    assert!(page.body.contains("id=\"no-jobs\""), "{}", page.body);
}

#[test]
fn the_appliances_client_signs_in_lists_releases_and_signs_out() {
    use printbridge::bridge::follow_me::{self as client, FollowMeError};
    use printbridge::bridge::http::CloudHttp;

    let g = two_printers(false);
    let p100 = g.printer(100).printer_id.clone();
    let kept = hold(
        &g.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &pdf_doc("client release", 2),
    );
    let dropped = hold(
        &g.base,
        ACCOUNT_A.0,
        &basic(ACCOUNT_A.0, ACCOUNT_A.1),
        &pdf_doc("client delete", 1),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = CloudHttp::new(Duration::from_secs(30), 1 << 20, None).unwrap();
    let base = g.base.as_str();
    rt.block_on(async {
        let wrong = client::sign_in(&http, base, ACCOUNT_A.0, "not the password at all").await;
        assert!(
            matches!(wrong, Err(FollowMeError::Unauthorized)),
            "{wrong:?}"
        );
        let token = client::sign_in(&http, base, ACCOUNT_A.0, ACCOUNT_A.1)
            .await
            .unwrap();
        assert_eq!(format!("{token:?}"), "UserToken(..)");
        let jobs = client::list_held(&http, base, &token).await.unwrap();
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["client release", "client delete"]);
        assert_eq!(jobs[0].id, kept);
        let r = client::release(&http, base, &token, kept, &p100)
            .await
            .unwrap();
        assert_eq!((r.job, r.printer.as_str()), (kept, p100.as_str()));
        let again = client::release(&http, base, &token, kept, &p100).await;
        assert!(matches!(again, Err(FollowMeError::NotHeld)), "{again:?}");
        let other = client::release(&http, base, &token, dropped, "no-such-printer").await;
        assert!(
            matches!(other, Err(FollowMeError::Forbidden(_))),
            "{other:?}"
        );
        client::delete(&http, base, &token, dropped).await.unwrap();
        let gone = client::delete(&http, base, &token, dropped).await;
        assert!(matches!(gone, Err(FollowMeError::NotHeld)), "{gone:?}");
        let none = client::release(&http, base, &token, 987_654, &p100).await;
        assert!(matches!(none, Err(FollowMeError::NotFound)), "{none:?}");
        assert!(client::list_held(&http, base, &token)
            .await
            .unwrap()
            .is_empty());
        client::sign_out(&http, base, &token).await.unwrap();
        let after = client::list_held(&http, base, &token).await;
        assert!(
            matches!(after, Err(FollowMeError::Unauthorized)),
            "{after:?}"
        );
    });
    assert_eq!(wait_printed_once(&g, "client release"), (1, 0));
    assert!(printer_jobs(&g, "client delete").is_empty());
}

/// The follow-me jobs of `user` as Get-Jobs which-jobs=`which` shows them: (id, name, state,
/// state message).
fn queue_jobs(
    base: &str,
    (user, password): (&str, &str),
    which: &str,
) -> Vec<(i32, String, i32, String)> {
    use common::bridge::{ipp_call, op, request};
    use printbridge::codec::ipp::{tag, Attribute, Value};
    let port = port_of(base);
    let mut m = request(0x000A, &format!("ipp://127.0.0.1:{port}{FOLLOW_ME}"), user);
    op(&mut m, "which-jobs", Value::Keyword(which.into()));
    m.group_mut(tag::OPERATION).push(Attribute::set(
        "requested-attributes",
        ["job-id", "job-name", "job-state", "job-state-message"]
            .iter()
            .map(|k| Value::Keyword(k.to_string()))
            .collect(),
    ));
    let r = ipp_call(port, FOLLOW_ME, Some(&basic(user, password)), &m, b"", 60).unwrap();
    assert_eq!(r.code, 0, "Get-Jobs: {r:?}");
    r.groups
        .iter()
        .filter(|g| g.tag == tag::JOB)
        .map(|g| {
            let s = |n: &str| {
                g.get(n)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let i = |n: &str| {
                g.get(n)
                    .and_then(|a| a.first())
                    .and_then(Value::as_int)
                    .unwrap_or(0)
            };
            (
                i("job-id"),
                s("job-name"),
                i("job-state"),
                s("job-state-message"),
            )
        })
        .collect()
}

#[test]
fn jobs_not_released_in_time_are_deleted_unprinted() {
    use common::cloud::{bootstrap_org, start_cloud_env, write_config};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cloud-data");
    bootstrap_org(
        &data,
        None,
        ("ann@example.com", "correct horse battery staple"),
        &[ACCOUNT_A],
    );
    // Three hours, not the default day.
    let config = write_config(dir.path(), "[infra]\nheld_job_seconds = 10800\n");
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let clock = |t: i64| t.to_string();
    let start = |t: i64| {
        start_cloud_env(
            &data,
            None,
            Some(&config),
            "127.0.0.1:0",
            &[],
            &[("PRINTBRIDGE_TEST_CLOCK", clock(t).as_str())],
        )
    };
    let a_basic = basic(ACCOUNT_A.0, ACCOUNT_A.1);
    let cloud = start(t0);
    let old: Vec<i64> = (1..=2)
        .map(|i| {
            hold(
                &cloud.base,
                ACCOUNT_A.0,
                &a_basic,
                &pdf_doc(&format!("too old {i}"), i),
            )
        })
        .collect();
    let documents = data.join("documents");
    let stored = common::files_under(&documents).len();
    assert!(stored >= 2, "documents not in {}", documents.display());
    drop(cloud);

    // Two hours later: still held.
    let cloud = start(t0 + 2 * 3600);
    let fresh = hold(&cloud.base, ACCOUNT_A.0, &a_basic, &pdf_doc("fresh", 1));
    let login = |base: &str| {
        let r = call(
            base,
            "POST",
            "/api/v1/session",
            None,
            Some(&json!({"email": ACCOUNT_A.0, "password": ACCOUNT_A.1})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["token"].as_str().unwrap().to_string()
    };
    let token = login(&cloud.base);
    let mut ids = held(&cloud.base, &token);
    ids.sort();
    assert_eq!(ids, [old[0], old[1], fresh]);
    drop(cloud);

    // Three hours and a minute after the first two: they expire, the fresh one stays.
    let cloud = start(t0 + 3 * 3600 + 60);
    let token = login(&cloud.base);
    assert!(
        wait_until(Duration::from_secs(60), || held(&cloud.base, &token)
            == [fresh]),
        "held: {:?}",
        held(&cloud.base, &token)
    );
    let r = release(&cloud.base, &token, old[0], "any-printer");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);
    // The owner sees them as canceled with the reason; their documents are deleted.
    let done = queue_jobs(&cloud.base, ACCOUNT_A, "completed");
    assert_eq!(done.len(), 2, "{done:?}");
    for (id, name, state, message) in &done {
        assert!(old.contains(&i64::from(*id)), "{done:?}");
        assert!(name.starts_with("too old"), "{done:?}");
        assert_eq!(*state, 7, "{done:?}");
        assert_eq!(message, "Not released within 3 hours; deleted unprinted");
    }
    let active = queue_jobs(&cloud.base, ACCOUNT_A, "not-completed");
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!((i64::from(active[0].0), active[0].2), (fresh, 4));
    assert!(
        wait_until(Duration::from_secs(60), || {
            common::files_under(&documents).len() == stored - 2 + 1
        }),
        "the expired jobs' documents are still stored: {:?}",
        common::files_under(&documents)
    );
}
