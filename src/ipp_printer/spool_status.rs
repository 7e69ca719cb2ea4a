//! How the appliance's spool failures answer as IPP statuses; the status codes, the [`Status`]
//! type and the response builder are the shared core's ([`crate::codec::ipp_status`]).

use crate::codec::ipp_status::{Status, REQUEST_ENTITY_TOO_LARGE};

impl From<crate::spool::SpoolError> for Status {
    fn from(e: crate::spool::SpoolError) -> Status {
        use crate::spool::SpoolError;
        match e {
            SpoolError::NotFound(id) => Status::not_found(format!("job {id} does not exist")),
            SpoolError::Transition(t) => Status::not_possible(t.to_string()),
            SpoolError::TooLarge(n) => Status::new(
                REQUEST_ENTITY_TOO_LARGE,
                format!("document larger than {n} bytes"),
            ),
            other => {
                // The cause goes to the log; the client gets a message without internals.
                tracing::error!("spool failure: {other}");
                Status::internal("the printer could not store the job")
            }
        }
    }
}
