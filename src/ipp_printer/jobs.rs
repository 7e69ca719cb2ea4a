//! Job operations: Print-Job, Validate-Job, Create-Job, Send-Document, Close-Job, Cancel-*, Get-Jobs,
//! Get-Job-Attributes, Hold/Release/Restart, Set-Job-Attributes and the document operations
//! (RFC 8011 §4.2-4.3, PWG 5100.11, PWG 5100.5).

use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::validate::{self, check_job_template};
use super::{DocumentBody, Printer, RequestContext};
use crate::codec::ipp::{date_time, tag, Attribute, Message, Value};
use crate::codec::ipp_attr::{
    int, kw, name, op_attr, op_bool, op_int, op_str, positive_int_operand, requested,
    required_positive_int, text, uri, JobAttributes,
};
use crate::codec::ipp_check::check_compression;
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, response, Status};
use crate::convert::sniff;
use crate::model::job::{JobEvent, JobState};
use crate::model::release::{self as release_policy, PinEncryption};
use crate::spool::release::{ClientPassword, ReleaseError};
use crate::spool::{DocumentMeta, Job, NewJob, StagedDocument};

/// How a refused release answers over IPP (the text is the user's; nothing tells that someone
/// else's job exists).
pub(crate) fn release_status(e: ReleaseError) -> Status {
    match e {
        ReleaseError::NotFound => Status::not_found(e.to_string()),
        ReleaseError::WrongPin { .. } | ReleaseError::Locked { .. } => {
            Status::new(status::NOT_AUTHORIZED, e.to_string())
        }
        ReleaseError::NotHeld => Status::not_possible(e.to_string()),
        ReleaseError::Store(e) => e.into(),
    }
}

impl Printer {
    /// requesting-user-name, or the authenticated user when there is one (RFC 8011 §9.3).
    pub(crate) fn requester(&self, req: &Message, ctx: &RequestContext) -> String {
        if let Some(u) = &ctx.authenticated_user {
            return u.clone();
        }
        op_str(req, "requesting-user-name")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(255).collect())
            .unwrap_or_else(|| "anonymous".to_string())
    }

    /// Whether the requester owns `job` or is an administrator. Without credentials,
    /// requesting-user-name is taken on trust (RFC 8011 §9.3) unless printing needs authentication.
    fn may_act_on(&self, job: &Job, req: &Message, ctx: &RequestContext) -> bool {
        if ctx.is_admin {
            return true;
        }
        if ctx.authenticated_user.is_none() && self.config.print_requires_auth {
            return false;
        }
        job.owner == self.requester(req, ctx)
    }

    /// [`Self::may_act_on`] as a status: client-error-not-authenticated without credentials (the
    /// net layer answers HTTP 401 so that the client asks for them, as CUPS does), else
    /// client-error-forbidden.
    fn check_may_act_on(
        &self,
        job: &Job,
        req: &Message,
        ctx: &RequestContext,
        refusal: &str,
    ) -> Result<(), Status> {
        if self.may_act_on(job, req, ctx) {
            Ok(())
        } else if ctx.authenticated_user.is_none() {
            Err(Status::new(
                status::NOT_AUTHENTICATED,
                format!("{refusal}: sign in as the owner or an administrator"),
            ))
        } else {
            Err(Status::new(status::FORBIDDEN, refusal))
        }
    }

    /// With `auth.print_requires_authentication`, job submission needs credentials.
    fn require_print_auth(&self, ctx: &RequestContext) -> Result<(), Status> {
        if self.config.print_requires_auth && ctx.authenticated_user.is_none() {
            return Err(Status::new(
                status::NOT_AUTHENTICATED,
                "this printer needs a user name and password to print",
            ));
        }
        Ok(())
    }

    /// A queue that prints on its users' behalf elsewhere (a `cloud:` queue) takes jobs only of
    /// people allowed there: others get client-error-not-authorized with the appliance's
    /// registration page, where they can ask for access (issue 13).
    async fn check_gate(&self, req: &Message, ctx: &RequestContext) -> Result<(), Status> {
        let Some(gate) = &self.config.gate else {
            return Ok(());
        };
        let owner = self.requester(req, ctx);
        gate.admit(&owner).await.map_err(|why| {
            let page = format!("https://{}{}", ctx.host, gate.access_page());
            Status::new(
                status::NOT_AUTHORIZED,
                format!("{why} Ask for access at {page}"),
            )
        })
    }

    /// Finds the target job from job-uri, or printer-uri + job-id (RFC 8011 §4.3.1).
    pub(crate) fn target_job(&self, req: &Message) -> Result<Arc<Job>, Status> {
        let id = if let Some(u) = op_str(req, "job-uri") {
            let prefix = format!("{}/", self.config.resource);
            let path = u
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            path.strip_prefix(&prefix)
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    Status::not_found(format!("job-uri '{u}' does not name a job of this printer"))
                })?
        } else {
            required_positive_int(req, "job-id")? as u32
        };
        self.spool
            .get(id)
            .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))
    }

    fn check_printer_target(&self, req: &Message) -> Result<(), Status> {
        if let Some(u) = op_str(req, "printer-uri") {
            let path = u
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_else(|| "/".into());
            let path = path.split('?').next().unwrap_or("/");
            let ours = &self.config.resource;
            let ok = path == ours
                || path.strip_prefix(ours.as_str()).is_some_and(|rest| {
                    rest.strip_prefix('/')
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                });
            if !ok {
                return Err(Status::not_found(format!("no printer at '{u}'")));
            }
        }
        Ok(())
    }

    fn creation_checks(
        &self,
        req: &Message,
    ) -> Result<(validate::Checked, String, String), Status> {
        self.check_printer_target(req)?;
        let format = validate::check_format(
            op_attr(req, "document-format").and_then(|a| a.first()),
            &self.caps(),
        )?;
        let compression = check_compression(op_attr(req, "compression").and_then(|a| a.first()))?;
        let job_group = req
            .group(tag::JOB)
            .map(|g| g.attributes.as_slice())
            .unwrap_or(&[]);
        let checked = check_job_template(job_group, &self.caps());
        let fidelity = op_bool(req, "ipp-attribute-fidelity").unwrap_or(false);
        if checked.conflicting && fidelity {
            let mut s = Status::new(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                "the job asks for attributes or values this printer does not support",
            );
            s.unsupported = checked.unsupported;
            return Err(s);
        }
        for (attr, ok) in [
            (
                "job-name",
                op_attr(req, "job-name").is_none_or(|a| {
                    matches!(
                        a.values.as_slice(),
                        [Value::Name(_) | Value::NameLang { .. }]
                    )
                }),
            ),
            (
                "document-name",
                op_attr(req, "document-name").is_none_or(|a| {
                    matches!(
                        a.values.as_slice(),
                        [Value::Name(_) | Value::NameLang { .. }]
                    )
                }),
            ),
            (
                "ipp-attribute-fidelity",
                op_attr(req, "ipp-attribute-fidelity")
                    .is_none_or(|a| matches!(a.values.as_slice(), [Value::Boolean(_)])),
            ),
        ] {
            if !ok {
                return Err(Status::bad_request(format!("{attr} has the wrong syntax")));
            }
        }
        // RFC 8011 §5.1.3: a 'name' is at most 255 octets. Longer names are refused with
        // client-error-request-value-too-long (RFC 8011 Appendix B.1.4.10), not cut
        // silently: the client learns the name it chose is not the job's.
        for attr in ["job-name", "document-name"] {
            if let Some(len) = op_str(req, attr).map(str::len).filter(|&n| n > 255) {
                // Not echoed in the unsupported group: the value itself is not valid IPP.
                return Err(Status::new(
                    status::REQUEST_VALUE_TOO_LONG,
                    format!("{attr} is {len} octets long; at most 255 are allowed"),
                ));
            }
        }
        Ok((checked, format, compression))
    }

    fn check_accepting(&self) -> Result<(), Status> {
        if !self.status.read().expect("printer lock").accepting {
            return Err(Status::new(
                status::NOT_ACCEPTING_JOBS,
                "the printer is not accepting jobs",
            ));
        }
        Ok(())
    }

    /// job-password and job-password-encryption (PWG 5100.11 §6.1, operation attributes of
    /// Print-Job, Create-Job and Validate-Job): the password as it will be kept, or `None` when
    /// the client sent none. A job that comes with one is held until its PIN is typed (docs/release.md).
    fn job_password(&self, req: &Message) -> Result<Option<ClientPassword>, Status> {
        let encryption = match op_attr(req, "job-password-encryption") {
            None => PinEncryption::None,
            Some(a) => match a.values.as_slice() {
                [Value::Keyword(k) | Value::Name(k)] => {
                    PinEncryption::from_keyword(k).ok_or_else(|| {
                        Status::unsupported(
                            status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                            format!(
                                "job-password-encryption '{}' is not supported; use one of: {}",
                                k.escape_debug(),
                                PinEncryption::SUPPORTED.join(", ")
                            ),
                            a.clone(),
                        )
                    })?
                }
                _ => {
                    return Err(Status::bad_request(
                        "job-password-encryption must be one keyword",
                    ))
                }
            },
        };
        let Some(a) = op_attr(req, "job-password") else {
            return Ok(None);
        };
        let octets = match a.values.as_slice() {
            // octetString(255), PWG 5100.11 §6.1.1.
            [Value::OctetString(b)] if (1..=255).contains(&b.len()) => b,
            [Value::OctetString(_)] => {
                return Err(Status::new(
                    status::REQUEST_VALUE_TOO_LONG,
                    "job-password must be 1 to 255 octets",
                ))
            }
            _ => return Err(Status::bad_request("job-password must be one octetString")),
        };
        let secret = release_policy::secret_from_client(octets, encryption).map_err(|e| {
            // The unsupported group names the attribute without sending the secret back.
            Status::unsupported(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                e.to_string(),
                Attribute::new("job-password", Value::OctetString(Vec::new())),
            )
        })?;
        Ok(Some(ClientPassword { secret, encryption }))
    }

    fn new_job(&self, req: &Message, ctx: &RequestContext, accepted: Vec<Attribute>) -> NewJob {
        let job_name = op_str(req, "job-name")
            .or_else(|| op_str(req, "document-name"))
            .map(|s| s.chars().take(255).collect::<String>())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "Untitled".to_string());
        let held_by_attr = accepted.iter().any(|a| {
            a.name == "job-hold-until"
                && a.first()
                    .and_then(Value::as_str)
                    .is_some_and(|v| v != "no-hold")
        });
        let hold = if held_by_attr || self.status.read().expect("printer lock").hold_new_jobs {
            Some("job-hold-until-specified")
        } else {
            None
        };
        NewJob {
            owner: self.requester(req, ctx),
            name: job_name,
            attributes: accepted,
            hold,
        }
    }

    async fn stage(&self, doc: DocumentBody) -> Result<StagedDocument, Status> {
        match self
            .spool
            .stage_document(doc, self.config.max_document_bytes)
            .await
        {
            Ok(s) => Ok(s),
            Err(crate::spool::SpoolError::Io(e)) => {
                // Most often the client went away mid-upload; nothing was accepted.
                tracing::warn!("document upload failed: {e}");
                Err(Status::bad_request(format!(
                    "the document could not be received: {e}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The document-format a received document is recorded with: for application/octet-stream
    /// (uncompressed) the format the bytes say they are; for text/plain, with the charset the
    /// document-charset operation attribute names (PWG 5100.7 §6.1.1). A document this printer
    /// recognises but cannot print (PostScript, also compressed or sent as octet-stream) is
    /// refused here with client-error-document-format-not-supported, before any job holds it:
    /// nothing unsupported is accepted and then aborted (issue 16). Declared text/plain is
    /// printed as text whatever it holds.
    async fn effective_format(
        &self,
        req: &Message,
        format: &str,
        compression: &str,
        staged: &StagedDocument,
        path: &std::path::Path,
    ) -> Result<String, Status> {
        let charset = op_attr(req, "document-charset").and_then(|a| a.first());
        let charset = match charset {
            None => None,
            Some(Value::Charset(c)) => Some(c.as_str()),
            Some(_) => return Err(Status::bad_request("document-charset must be a charset")),
        };
        let unsupported_charset = |c: String| {
            Status::unsupported(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                format!(
                    "document-charset '{c}' is not supported; send the text as one of: {}",
                    sniff::Charset::SUPPORTED.join(", ")
                ),
                Attribute::new("document-charset", Value::Charset(c)),
            )
        };
        let declared_text = sniff::text_charset(format).is_some();
        if staged.size == 0 || (declared_text && compression == "none") {
            return sniff::record_format(format, charset).map_err(unsupported_charset);
        }
        // Enough of the file for the sniffer to see 1 KiB of the document once decompressed.
        const PREFIX: u64 = 64 << 10;
        let mut prefix = Vec::with_capacity(sniff::SNIFF_LEN);
        if let Ok(f) = tokio::fs::File::open(path).await {
            let _ = f.take(PREFIX).read_to_end(&mut prefix).await;
        }
        let whole = staged.size <= PREFIX;
        if let Some(cause) = sniff::compression_error(compression, &prefix, whole) {
            // RFC 8011 §13.1.4.16: refused now rather than accepted and aborted.
            return Err(Status::unsupported(
                status::COMPRESSION_ERROR,
                format!(
                    "the document is not valid {compression} data ({cause}); send it again, or \
                     uncompressed"
                ),
                Attribute::new("compression", Value::Keyword(compression.to_string())),
            ));
        }
        if declared_text {
            return sniff::record_format(format, charset).map_err(unsupported_charset);
        }
        let magic = sniff::inspect(compression, &prefix);
        if let Some(message) = magic.and_then(sniff::refusal) {
            return Err(Status::unsupported(
                status::DOCUMENT_FORMAT_NOT_SUPPORTED,
                message,
                Attribute::new("document-format", Value::MimeMediaType(format.to_string())),
            ));
        }
        if format != "application/octet-stream" || compression != "none" {
            return Ok(format.to_string());
        }
        let found = sniff::document_format(&prefix[..prefix.len().min(sniff::SNIFF_LEN)]);
        sniff::record_format(found.unwrap_or(format), charset).map_err(unsupported_charset)
    }

    fn job_response(
        &self,
        job: &Job,
        ctx: &RequestContext,
        unsupported: Vec<Attribute>,
    ) -> Message {
        let code = if unsupported.is_empty() {
            status::OK
        } else {
            status::OK_IGNORED_OR_SUBSTITUTED
        };
        // A PIN the appliance assigned is told to the one who sent the job (docs/release.md).
        let assigned = self
            .spool
            .release_record(job.id)
            .filter(|r| r.pin_assigned)
            .and(job.status.message.as_deref());
        let mut resp = response(code, assigned);
        if !unsupported.is_empty() {
            resp.group_mut(tag::UNSUPPORTED).attributes = unsupported;
        }
        let g = resp.group_mut(tag::JOB);
        g.push(Attribute::new("job-id", int(job.id as i32)));
        g.push(Attribute::new("job-uri", uri(&self.job_uri(ctx, job.id))));
        g.push(Attribute::new(
            "job-state",
            Value::Enum(job.status.state as i32),
        ));
        g.push(Attribute::set(
            "job-state-reasons",
            job.status.reasons.iter().map(|r| kw(r)).collect(),
        ));
        if let Some(m) = &job.status.message {
            g.push(Attribute::new("job-state-message", text(m)));
        }
        g.push(Attribute::new(
            "number-of-intervening-jobs",
            int(self.intervening(job.id) as i32),
        ));
        resp
    }

    pub(crate) fn job_uri(&self, ctx: &RequestContext, id: u32) -> String {
        ctx.printer_uri(&format!("{}/{}", self.config.resource, id))
    }

    fn intervening(&self, id: u32) -> usize {
        self.spool
            .count_where(|j| j.id < id && !j.status.state.is_terminal())
    }

    pub(super) async fn print_job(
        &self,
        req: Message,
        doc: DocumentBody,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.require_print_auth(ctx)?;
        self.check_accepting()?;
        let (checked, format, compression) = self.creation_checks(&req)?;
        let password = self.job_password(&req)?;
        self.check_gate(&req, ctx).await?;
        let staged = self.stage(doc).await?;
        if staged.size == 0 {
            return Err(Status::bad_request("Print-Job carried no document data"));
        }
        let path = staged_path(&staged);
        let format = self
            .effective_format(&req, &format, &compression, &staged, &path)
            .await?;
        let new = self.new_job(&req, ctx, checked.accepted);
        let meta = DocumentMeta {
            format,
            compression,
            name: op_str(&req, "document-name").map(str::to_string),
        };
        let job = self
            .spool
            .create_job_with_password(new, Some((staged, meta)), true, password)
            .await?;
        Ok(self.job_response(&job, ctx, checked.unsupported))
    }

    pub(super) async fn validate_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let (checked, _, _) = self.creation_checks(&req)?;
        self.job_password(&req)?;
        self.check_gate(&req, ctx).await?;
        let code = if checked.unsupported.is_empty() {
            status::OK
        } else {
            status::OK_IGNORED_OR_SUBSTITUTED
        };
        let mut resp = response(code, None);
        if !checked.unsupported.is_empty() {
            resp.group_mut(tag::UNSUPPORTED).attributes = checked.unsupported;
        }
        Ok(resp)
    }

    pub(super) async fn create_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.require_print_auth(ctx)?;
        self.check_accepting()?;
        let (checked, _, _) = self.creation_checks(&req)?;
        let password = self.job_password(&req)?;
        self.check_gate(&req, ctx).await?;
        let new = self.new_job(&req, ctx, checked.accepted);
        let job = self
            .spool
            .create_job_with_password(new, None, false, password)
            .await?;
        Ok(self.job_response(&job, ctx, checked.unsupported))
    }

    pub(super) async fn send_document(
        &self,
        req: Message,
        doc: DocumentBody,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.require_print_auth(ctx)?;
        let job = self.target_job(&req)?;
        self.check_may_act_on(&job, &req, ctx, "only the job's owner may add documents")?;
        let last = match op_attr(&req, "last-document").map(|a| a.values.as_slice()) {
            Some([Value::Boolean(b)]) => *b,
            Some(_) => return Err(Status::bad_request("last-document must be one boolean")),
            None => {
                return Err(Status::bad_request(
                    "missing last-document operation attribute (RFC 8011 §4.3.1)",
                ))
            }
        };
        if !job.status.incoming {
            return Err(Status::not_possible(format!(
                "job {} is not waiting for documents",
                job.id
            )));
        }
        let format = validate::check_format(
            op_attr(&req, "document-format").and_then(|a| a.first()),
            &self.caps(),
        )?;
        let compression = check_compression(op_attr(&req, "compression").and_then(|a| a.first()))?;
        let staged = self.stage(doc).await?;
        let job = if staged.size == 0 {
            if !last {
                return Err(Status::bad_request(
                    "Send-Document carried no document data",
                ));
            }
            // last-document=true without data closes the job (RFC 8011 §4.3.1).
            self.spool.transition(job.id, JobEvent::Closed).await?
        } else {
            let path = staged_path(&staged);
            let format = self
                .effective_format(&req, &format, &compression, &staged, &path)
                .await?;
            let meta = DocumentMeta {
                format,
                compression,
                name: op_str(&req, "document-name").map(str::to_string),
            };
            self.spool.add_document(job.id, staged, meta, last).await?
        };
        Ok(self.job_response(&job, ctx, Vec::new()))
    }

    pub(super) async fn close_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.check_may_act_on(&job, &req, ctx, "only the job's owner may close it")?;
        if !job.status.incoming {
            return Err(Status::not_possible(format!(
                "job {} is already closed",
                job.id
            )));
        }
        let job = self.spool.transition(job.id, JobEvent::Closed).await?;
        Ok(self.job_response(&job, ctx, Vec::new()))
    }

    pub(super) async fn cancel_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.cancel_as_requester(&job, &req, ctx).await
    }

    /// Cancels `job` for the requester of `req`: its owner or an administrator (an administrator
    /// canceling someone else's job cancels it as operator, RFC 8011 §5.3.8 job-state-reasons).
    async fn cancel_as_requester(
        &self,
        job: &Job,
        req: &Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_may_act_on(
            job,
            req,
            ctx,
            "only the job's owner or an administrator may cancel it",
        )?;
        let by_operator = ctx.is_admin && job.owner != self.requester(req, ctx);
        self.spool
            .transition(job.id, JobEvent::Cancel { by_operator })
            .await?;
        Ok(Printer::ok())
    }

    /// Cancel-Jobs (PWG 5100.11 §4.1) and Purge-Jobs (RFC 8011 §4.2.9: also forget finished jobs).
    pub(super) async fn cancel_jobs(
        &self,
        req: Message,
        ctx: &RequestContext,
        purge: bool,
    ) -> Result<Message, Status> {
        self.check_printer_target(&req)?;
        self.require_admin(ctx)?;
        let ids = self.job_ids_operand(&req)?;
        for job in self.spool.list() {
            if job.status.state.is_terminal()
                || ids.as_ref().is_some_and(|ids| !ids.contains(&job.id))
            {
                continue;
            }
            let _ = self
                .spool
                .transition(job.id, JobEvent::Cancel { by_operator: true })
                .await;
        }
        if purge {
            self.spool.purge(0, 0).await?;
        }
        Ok(Printer::ok())
    }

    pub(super) async fn cancel_my_jobs(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_printer_target(&req)?;
        self.require_print_auth(ctx)?;
        let me = self.requester(&req, ctx);
        let ids = self.job_ids_operand(&req)?;
        if let Some(ids) = &ids {
            for id in ids {
                match self.spool.get(*id) {
                    Some(j) if j.owner == me => {}
                    _ => {
                        let mut s =
                            Status::not_possible(format!("job {id} is not one of your jobs"));
                        s.unsupported
                            .push(Attribute::new("job-ids", int(*id as i32)));
                        return Err(s);
                    }
                }
            }
        }
        for job in self.spool.list() {
            if job.owner != me
                || job.status.state.is_terminal()
                || ids.as_ref().is_some_and(|ids| !ids.contains(&job.id))
            {
                continue;
            }
            let _ = self
                .spool
                .transition(job.id, JobEvent::Cancel { by_operator: false })
                .await;
        }
        Ok(Printer::ok())
    }

    fn job_ids_operand(&self, req: &Message) -> Result<Option<Vec<u32>>, Status> {
        match op_attr(req, "job-ids") {
            None => Ok(None),
            Some(a) => a
                .values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) if *i > 0 => Ok(*i as u32),
                    _ => Err(Status::bad_request("job-ids must be positive integers")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    pub(super) async fn hold_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.check_may_act_on(
            &job,
            &req,
            ctx,
            "only the job's owner or an administrator may hold it",
        )?;
        if let Some(a) = op_attr(&req, "job-hold-until") {
            let checked = check_job_template(std::slice::from_ref(a), &self.caps());
            if checked.conflicting {
                let mut s = Status::new(
                    status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                    "unsupported job-hold-until value",
                );
                s.unsupported = checked.unsupported;
                return Err(s);
            }
        }
        self.spool
            .transition(
                job.id,
                JobEvent::Hold {
                    reason: "job-hold-until-specified",
                },
            )
            .await?;
        Ok(Printer::ok())
    }

    pub(super) async fn release_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        if self.spool.is_held_for_release(job.id) {
            return self.release_held(&job, ctx).await;
        }
        self.check_may_act_on(
            &job,
            &req,
            ctx,
            "only the job's owner or an administrator may release it",
        )?;
        self.spool.transition(job.id, JobEvent::Release).await?;
        Ok(Printer::ok())
    }

    /// Release-Job of a job held for release (docs/release.md): only its owner or an
    /// administrator, signed in (requesting-user-name is not enough here: it would make the PIN
    /// pointless), releases it without its PIN.
    async fn release_held(&self, job: &Job, ctx: &RequestContext) -> Result<Message, Status> {
        let Some(user) = &ctx.authenticated_user else {
            return Err(Status::new(
                status::NOT_AUTHORIZED,
                "this job waits for its PIN: type it at the printer's release page, or sign in as \
                 its owner",
            ));
        };
        let released = if ctx.is_admin {
            self.spool.release_by_admin(job.id, user).await
        } else if job.owner.eq_ignore_ascii_case(user) {
            self.spool.release_by_owner(job.id, user).await
        } else {
            return Err(Status::new(
                status::FORBIDDEN,
                "only the job's owner or an administrator may release it",
            ));
        };
        released.map_err(release_status)?;
        Ok(Printer::ok())
    }

    /// Restart-Job (RFC 8011 §4.3.7) and Reprocess-Job (PWG 5100.11 §4.4): print a finished job again,
    /// possible only while its documents are retained.
    pub(super) async fn restart_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.check_may_act_on(
            &job,
            &req,
            ctx,
            "only the job's owner or an administrator may restart it",
        )?;
        if !job.status.state.is_terminal() {
            return Err(Status::not_possible(format!(
                "job {} is {} and has not finished",
                job.id, job.status.state
            )));
        }
        let kept = job
            .documents
            .iter()
            .all(|d| self.spool.document_path(job.id, d.number).exists());
        if job.documents.is_empty() || !kept {
            return Err(Status::not_possible(format!(
                "the documents of job {} are no longer retained (spool.keep_documents is off)",
                job.id
            )));
        }
        self.spool.transition(job.id, JobEvent::Restart).await?;
        Ok(Printer::ok())
    }

    pub(super) async fn set_job_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.check_may_act_on(
            &job,
            &req,
            ctx,
            "only the job's owner or an administrator may change it",
        )?;
        if job.status.state.is_terminal() {
            return Err(Status::not_possible(format!("job {} has finished", job.id)));
        }
        let attrs = req
            .group(tag::JOB)
            .map(|g| g.attributes.clone())
            .unwrap_or_default();
        if attrs.is_empty() {
            return Err(Status::bad_request("no job attributes to set"));
        }
        let mut new_name = None;
        let mut set = Vec::new();
        let mut bad = Vec::new();
        for a in attrs {
            match a.name.as_str() {
                "job-name" => match a.values.as_slice() {
                    // RFC 8011 §5.1.3: at most 255 octets.
                    [v @ (Value::Name(_) | Value::NameLang { .. })]
                        if v.as_str().is_some_and(|s| s.len() <= 255) =>
                    {
                        new_name = v.as_str().map(str::to_string)
                    }
                    _ => bad.push(a),
                },
                "job-hold-until" | "job-priority" => {
                    let c = check_job_template(std::slice::from_ref(&a), &self.caps());
                    if c.conflicting {
                        bad.push(a);
                    } else {
                        set.push(a);
                    }
                }
                _ => bad.push(a),
            }
        }
        if !bad.is_empty() {
            // Set-Job-Attributes is atomic (PWG 5100.11 §4.2): all or nothing.
            let mut s = Status::new(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                "these job attributes cannot be set",
            );
            s.unsupported = bad;
            return Err(s);
        }
        let hold = set
            .iter()
            .find(|a| a.name == "job-hold-until")
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        self.spool.set_attributes(job.id, new_name, set).await?;
        match hold.as_deref() {
            Some("no-hold") if job.status.state == JobState::PendingHeld => {
                self.spool.transition(job.id, JobEvent::Release).await?;
            }
            Some(h) if h != "no-hold" && job.status.state == JobState::Pending => {
                self.spool
                    .transition(
                        job.id,
                        JobEvent::Hold {
                            reason: "job-hold-until-specified",
                        },
                    )
                    .await?;
            }
            _ => {}
        }
        Ok(Printer::ok())
    }

    pub(super) async fn cancel_current_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_printer_target(&req)?;
        let current = self
            .spool
            .list()
            .into_iter()
            .find(|j| j.status.state == JobState::Processing);
        let Some(job) = current else {
            return Err(Status::not_possible("no job is printing"));
        };
        if let Some(id) = op_int(&req, "job-id") {
            if id as u32 != job.id {
                return Err(Status::not_possible(format!(
                    "job {id} is not the current job"
                )));
            }
        }
        self.cancel_as_requester(&job, &req, ctx).await
    }

    /// Suspend-Current-Job (PWG 5100.11 §4.3): the printing job stops and waits, held, until Resume-Job.
    pub(super) async fn suspend_current_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_printer_target(&req)?;
        self.require_admin(ctx)?;
        let current = self
            .spool
            .list()
            .into_iter()
            .find(|j| j.status.state == JobState::Processing);
        let Some(job) = current else {
            return Err(Status::not_possible("no job is printing"));
        };
        self.spool.transition(job.id, JobEvent::Requeue).await?;
        self.spool
            .transition(
                job.id,
                JobEvent::Hold {
                    reason: "job-suspended-by-operator",
                },
            )
            .await?;
        Ok(Printer::ok())
    }

    pub(super) async fn resume_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.release_job(req, ctx).await
    }

    /// Promote-Job (PWG 5100.11 §4.5) and Schedule-Job-After (§4.6): change the order pending jobs
    /// print in. Jobs print by job-priority then age, so both set the priority.
    pub(super) async fn promote_job(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        self.check_may_act_on(
            &job,
            &req,
            ctx,
            "only the job's owner or an administrator may reorder it",
        )?;
        if !matches!(job.status.state, JobState::Pending | JobState::PendingHeld) {
            return Err(Status::not_possible(format!(
                "job {} is {} and cannot be reordered",
                job.id, job.status.state
            )));
        }
        let priority = if req.code == Operation::PromoteJob.code() {
            100
        } else {
            let after = match op_int(&req, "job-id-after") {
                Some(id) => self
                    .spool
                    .get(id as u32)
                    .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))?,
                None => return Err(Status::bad_request("missing job-id-after")),
            };
            (after.priority() - 1).max(1)
        };
        self.spool
            .set_attributes(
                job.id,
                None,
                vec![Attribute::new("job-priority", int(priority))],
            )
            .await?;
        self.spool.wake_worker();
        Ok(Printer::ok())
    }

    pub(super) async fn resubmit_job(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        Err(Status::not_possible(format!(
            "job {} cannot be resubmitted: its documents are not retained after printing",
            job.id
        )))
    }

    pub(super) async fn cancel_document(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        let n = op_int(&req, "document-number")
            .ok_or_else(|| Status::bad_request("missing document-number"))?;
        if !job.documents.iter().any(|d| d.number as i32 == n) {
            return Err(Status::not_found(format!(
                "job {} has no document {n}",
                job.id
            )));
        }
        Err(Status::not_possible(
            "documents cannot be canceled individually; cancel the job",
        ))
    }

    pub(super) async fn get_documents(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        let mut resp = Printer::ok();
        let owner = self.may_act_on(&job, &req, ctx);
        for d in &job.documents {
            let attrs = self.document_attributes(&job, d, ctx, owner);
            resp.groups.push(crate::codec::ipp::Group {
                tag: tag::DOCUMENT,
                attributes: attrs,
            });
        }
        Ok(resp)
    }

    pub(super) async fn get_document_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        let n = op_int(&req, "document-number")
            .ok_or_else(|| Status::bad_request("missing document-number"))?;
        let d = job
            .documents
            .iter()
            .find(|d| d.number as i32 == n)
            .ok_or_else(|| Status::not_found(format!("job {} has no document {n}", job.id)))?;
        let owner = self.may_act_on(&job, &req, ctx);
        let mut resp = Printer::ok();
        resp.groups.push(crate::codec::ipp::Group {
            tag: tag::DOCUMENT,
            attributes: self.document_attributes(&job, d, ctx, owner),
        });
        Ok(resp)
    }

    pub(super) async fn set_document_attributes(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let _job = self.target_job(&req)?;
        let attrs = req
            .group(tag::DOCUMENT)
            .map(|g| g.attributes.clone())
            .unwrap_or_default();
        let mut s = Status::new(
            status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            "no document attributes are settable",
        );
        s.unsupported = attrs;
        Err(s)
    }

    pub(super) async fn validate_document(
        &self,
        req: Message,
        _ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        if !job.status.incoming {
            return Err(Status::not_possible(format!(
                "job {} is not waiting for documents",
                job.id
            )));
        }
        validate::check_format(
            op_attr(&req, "document-format").and_then(|a| a.first()),
            &self.caps(),
        )?;
        check_compression(op_attr(&req, "compression").and_then(|a| a.first()))?;
        Ok(Printer::ok())
    }

    fn document_attributes(
        &self,
        job: &Job,
        d: &crate::spool::Document,
        ctx: &RequestContext,
        owner: bool,
    ) -> Vec<Attribute> {
        let state = match job.status.state {
            JobState::Completed => 9,
            JobState::Canceled => 7,
            JobState::Aborted => 8,
            JobState::Processing => 5,
            _ => 3,
        };
        let mut v = vec![
            Attribute::new("document-number", int(d.number as i32)),
            Attribute::new("document-job-id", int(job.id as i32)),
            Attribute::new("document-job-uri", uri(&self.job_uri(ctx, job.id))),
            Attribute::new(
                "document-printer-uri",
                uri(&ctx.printer_uri(&self.config.resource)),
            ),
            Attribute::new("document-format", Value::MimeMediaType(d.format.clone())),
            Attribute::new("compression", kw(&d.compression)),
            Attribute::new("document-state", Value::Enum(state)),
            Attribute::new("document-state-reasons", kw("none")),
            Attribute::new(
                "k-octets",
                int(d.size.div_ceil(1024).min(i32::MAX as u64) as i32),
            ),
        ];
        if owner {
            if let Some(n) = d.name.as_deref().filter(|n| !n.is_empty()) {
                v.push(Attribute::new("document-name", name(n)));
            }
        }
        v
    }

    pub(super) async fn get_job_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let job = self.target_job(&req)?;
        let wanted = requested(&req);
        let owner = self.may_act_on(&job, &req, ctx);
        let mut resp = Printer::ok();
        let attrs = self.job_attributes(&job, ctx, wanted.as_deref(), owner, &["all"]);
        resp.groups.push(crate::codec::ipp::Group {
            tag: tag::JOB,
            attributes: attrs,
        });
        Ok(resp)
    }

    /// Get-Jobs (RFC 8011 §4.2.6, PWG 5100.7 which-jobs values, PWG 5100.11 first-index).
    pub(super) async fn get_jobs(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        self.check_printer_target(&req)?;
        let which = op_str(&req, "which-jobs")
            .unwrap_or("not-completed")
            .to_string();
        let filter: Box<dyn Fn(&Job) -> bool> = match which.as_str() {
            "not-completed" => Box::new(|j: &Job| !j.status.state.is_terminal()),
            "completed" => Box::new(|j: &Job| j.status.state.is_terminal()),
            "all" => Box::new(|_: &Job| true),
            "aborted" => Box::new(|j: &Job| j.status.state == JobState::Aborted),
            "canceled" => Box::new(|j: &Job| j.status.state == JobState::Canceled),
            "pending" => Box::new(|j: &Job| j.status.state == JobState::Pending),
            "pending-held" => Box::new(|j: &Job| j.status.state == JobState::PendingHeld),
            "processing" => Box::new(|j: &Job| j.status.state == JobState::Processing),
            "processing-stopped" => {
                Box::new(|j: &Job| j.status.state == JobState::ProcessingStopped)
            }
            // We never create proof-print jobs, so there are none to list.
            "proof-print" => Box::new(|_: &Job| false),
            other => {
                let mut s = Status::new(
                    status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                    format!("which-jobs '{other}' is not supported"),
                );
                s.unsupported.push(Attribute::new("which-jobs", kw(other)));
                return Err(s);
            }
        };
        let limit = positive_int_operand(&req, "limit")?.map_or(usize::MAX, |n| n as usize);
        let first_index = positive_int_operand(&req, "first-index")?.map_or(1, |n| n as usize);
        let my_jobs = op_bool(&req, "my-jobs").unwrap_or(false);
        let me = self.requester(&req, ctx);
        let wanted = requested(&req);
        let mut jobs: Vec<Arc<Job>> = self
            .spool
            .list()
            .into_iter()
            .filter(|j| filter(j) && (!my_jobs || j.owner == me))
            .collect();
        // Completed jobs newest first, active jobs in print order (as CUPS and ippeveprinter do).
        if which == "completed" {
            jobs.reverse();
        }
        let mut resp = Printer::ok();
        for job in jobs.into_iter().skip(first_index - 1).take(limit) {
            let owner = self.may_act_on(&job, &req, ctx);
            let attrs =
                self.job_attributes(&job, ctx, wanted.as_deref(), owner, &["job-id", "job-uri"]);
            resp.groups.push(crate::codec::ipp::Group {
                tag: tag::JOB,
                attributes: attrs,
            });
        }
        Ok(resp)
    }

    /// Builds the requested job attributes; `default` applies when requested-attributes is absent.
    pub(crate) fn job_attributes(
        &self,
        job: &Job,
        ctx: &RequestContext,
        wanted: Option<&[String]>,
        owner: bool,
        default: &[&str],
    ) -> Vec<Attribute> {
        let mut out = JobAttributes::new(wanted, default, owner);
        let mut put = |n: &str, val: Value| out.put(n, val);
        let s = &job.status;
        put("job-id", int(job.id as i32));
        put("job-uri", uri(&self.job_uri(ctx, job.id)));
        put("job-uuid", uri(&job.uuid));
        put(
            "job-printer-uri",
            uri(&ctx.printer_uri(&self.config.resource)),
        );
        put("job-name", name(&job.name));
        put("job-originating-user-name", name(&job.owner));
        // A job the stopped device holds is processing-stopped until the device goes on (RFC 8011
        // §5.3.7); the spool's state stays processing, so nothing is sent again.
        let stopped_at_device = s.state == JobState::Processing && self.device_stopped();
        put(
            "job-state",
            Value::Enum(if stopped_at_device {
                JobState::ProcessingStopped as i32
            } else {
                s.state as i32
            }),
        );
        // The message of a job waiting for release may hold its assigned PIN: its owner's only.
        if let Some(m) = s
            .message
            .as_ref()
            .filter(|_| owner || !self.spool.is_held_for_release(job.id))
        {
            put("job-state-message", text(m));
        }
        put("job-printer-up-time", int(self.clock.now() as i32));
        put("time-at-creation", int(job.time_created as i32));
        put("date-time-at-creation", date_time(job.time_created));
        let no_value = || Value::OutOfBand(tag::NO_VALUE);
        put(
            "time-at-processing",
            s.time_processing
                .map(|t| int(t as i32))
                .unwrap_or_else(no_value),
        );
        put(
            "date-time-at-processing",
            s.time_processing.map(date_time).unwrap_or_else(no_value),
        );
        put(
            "time-at-completed",
            s.time_completed
                .map(|t| int(t as i32))
                .unwrap_or_else(no_value),
        );
        put(
            "date-time-at-completed",
            s.time_completed.map(date_time).unwrap_or_else(no_value),
        );
        put(
            "job-impressions-completed",
            int(s.impressions_completed as i32),
        );
        put("job-media-sheets-completed", int(s.sheets_completed as i32));
        put("job-pages-completed", int(s.pages_completed as i32));
        put(
            "job-k-octets",
            int(job.k_octets().min(i32::MAX as u64) as i32),
        );
        put("number-of-documents", int(job.documents.len() as i32));
        if !s.state.is_terminal() {
            put(
                "number-of-intervening-jobs",
                int(self.intervening(job.id) as i32),
            );
        }
        if let Some(d) = job.documents.first() {
            put(
                "document-format-supplied",
                Value::MimeMediaType(d.format.clone()),
            );
            put("compression-supplied", kw(&d.compression));
            if let Some(n) = d.name.as_deref().filter(|n| !n.is_empty()) {
                put("document-name-supplied", name(n));
            }
        }
        let mut reasons: Vec<Value> = s.reasons.iter().map(|r| kw(r)).collect();
        if stopped_at_device {
            reasons.push(kw("printer-stopped"));
        }
        // A job waiting for an output device that does not answer (a cloud that is down) says
        // so, as the queue does (RFC 8011 §5.3.8 connecting-to-device is a job reason too).
        if matches!(s.state, JobState::Pending | JobState::Processing)
            && !s.reasons.iter().any(|r| r == "connecting-to-device")
            && self.device_connecting()
        {
            reasons.retain(|r| r.as_str() != Some("none"));
            reasons.push(kw("connecting-to-device"));
        }
        out.put_set("job-state-reasons", reasons);
        out.templates(&job.attributes);
        out.finish()
    }
}

fn staged_path(s: &StagedDocument) -> std::path::PathBuf {
    s.path().to_path_buf()
}
