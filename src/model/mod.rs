//! Pure domain logic: the job state machine, printer capabilities, the clock trait, the cloud
//! registration request. No I/O.

pub mod clock;
pub mod email;
pub mod groups;
pub mod ipp_caps;
pub mod job;
pub mod printer;
pub mod registration;
pub mod release;
