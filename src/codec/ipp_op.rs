//! IPP operation ids with their registered names: RFC 8011 §5.4.15, the subscription operations
//! of RFC 3995/3996, the administrative operations of RFC 3998 and PWG 5100.11/5100.13, and the
//! INFRA operations of PWG 5100.18 §6. One enum for every IPP speaker in the crate.

/// Defines each operation once, as a variant and a row of [`Operation::ALL`].
macro_rules! operations {
    ($( $variant:ident = $code:literal, $name:literal; )*) => {
        /// An IPP operation (operation-id, RFC 8010 §3.1.1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum Operation {
            $( $variant = $code, )*
        }

        impl Operation {
            /// Every operation we know, in numeric order.
            pub const ALL: &'static [Operation] = &[ $( Operation::$variant, )* ];

            /// The registered name, e.g. "Print-Job".
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$variant => $name, )*
                }
            }
        }
    };
}

operations! {
    PrintJob = 0x0002, "Print-Job";
    PrintUri = 0x0003, "Print-URI";
    ValidateJob = 0x0004, "Validate-Job";
    CreateJob = 0x0005, "Create-Job";
    SendDocument = 0x0006, "Send-Document";
    SendUri = 0x0007, "Send-URI";
    CancelJob = 0x0008, "Cancel-Job";
    GetJobAttributes = 0x0009, "Get-Job-Attributes";
    GetJobs = 0x000A, "Get-Jobs";
    GetPrinterAttributes = 0x000B, "Get-Printer-Attributes";
    HoldJob = 0x000C, "Hold-Job";
    ReleaseJob = 0x000D, "Release-Job";
    RestartJob = 0x000E, "Restart-Job";
    PausePrinter = 0x0010, "Pause-Printer";
    ResumePrinter = 0x0011, "Resume-Printer";
    PurgeJobs = 0x0012, "Purge-Jobs";
    SetPrinterAttributes = 0x0013, "Set-Printer-Attributes";
    SetJobAttributes = 0x0014, "Set-Job-Attributes";
    GetPrinterSupportedValues = 0x0015, "Get-Printer-Supported-Values";
    CreatePrinterSubscriptions = 0x0016, "Create-Printer-Subscriptions";
    CreateJobSubscriptions = 0x0017, "Create-Job-Subscriptions";
    GetSubscriptionAttributes = 0x0018, "Get-Subscription-Attributes";
    GetSubscriptions = 0x0019, "Get-Subscriptions";
    RenewSubscription = 0x001A, "Renew-Subscription";
    CancelSubscription = 0x001B, "Cancel-Subscription";
    GetNotifications = 0x001C, "Get-Notifications";
    EnablePrinter = 0x0022, "Enable-Printer";
    DisablePrinter = 0x0023, "Disable-Printer";
    PausePrinterAfterCurrentJob = 0x0024, "Pause-Printer-After-Current-Job";
    HoldNewJobs = 0x0025, "Hold-New-Jobs";
    ReleaseHeldNewJobs = 0x0026, "Release-Held-New-Jobs";
    DeactivatePrinter = 0x0027, "Deactivate-Printer";
    ActivatePrinter = 0x0028, "Activate-Printer";
    RestartPrinter = 0x0029, "Restart-Printer";
    ShutdownPrinter = 0x002A, "Shutdown-Printer";
    StartupPrinter = 0x002B, "Startup-Printer";
    ReprocessJob = 0x002C, "Reprocess-Job";
    CancelCurrentJob = 0x002D, "Cancel-Current-Job";
    SuspendCurrentJob = 0x002E, "Suspend-Current-Job";
    ResumeJob = 0x002F, "Resume-Job";
    PromoteJob = 0x0030, "Promote-Job";
    ScheduleJobAfter = 0x0031, "Schedule-Job-After";
    CancelDocument = 0x0033, "Cancel-Document";
    GetDocumentAttributes = 0x0034, "Get-Document-Attributes";
    GetDocuments = 0x0035, "Get-Documents";
    DeleteDocument = 0x0036, "Delete-Document";
    SetDocumentAttributes = 0x0037, "Set-Document-Attributes";
    CancelJobs = 0x0038, "Cancel-Jobs";
    CancelMyJobs = 0x0039, "Cancel-My-Jobs";
    ResubmitJob = 0x003A, "Resubmit-Job";
    CloseJob = 0x003B, "Close-Job";
    IdentifyPrinter = 0x003C, "Identify-Printer";
    ValidateDocument = 0x003D, "Validate-Document";
    AddDocumentImages = 0x003E, "Add-Document-Images";
    AcknowledgeDocument = 0x003F, "Acknowledge-Document";
    AcknowledgeIdentifyPrinter = 0x0040, "Acknowledge-Identify-Printer";
    AcknowledgeJob = 0x0041, "Acknowledge-Job";
    FetchDocument = 0x0042, "Fetch-Document";
    FetchJob = 0x0043, "Fetch-Job";
    GetOutputDeviceAttributes = 0x0044, "Get-Output-Device-Attributes";
    UpdateActiveJobs = 0x0045, "Update-Active-Jobs";
    DeregisterOutputDevice = 0x0046, "Deregister-Output-Device";
    UpdateDocumentStatus = 0x0047, "Update-Document-Status";
    UpdateJobStatus = 0x0048, "Update-Job-Status";
    UpdateOutputDeviceAttributes = 0x0049, "Update-Output-Device-Attributes";
    GetNextDocumentData = 0x004A, "Get-Next-Document-Data";
}

impl Operation {
    /// The operation with this operation-id; `None` for ids we do not know.
    pub fn from_code(code: u16) -> Option<Operation> {
        // ALL is sorted, so a binary search finds the variant.
        Operation::ALL
            .binary_search_by_key(&code, |o| o.code())
            .ok()
            .map(|i| Operation::ALL[i])
    }

    pub fn code(self) -> u16 {
        self as u16
    }

    /// The operations-supported value (RFC 8011 §5.4.15: type2 enum).
    pub fn enum_value(self) -> i32 {
        i32::from(self.code())
    }
}

/// For logs: the operation's name, or its id in hex when unknown.
pub fn describe(code: u16) -> String {
    match Operation::from_code(code) {
        Some(op) => op.name().to_string(),
        None => format!("0x{code:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_through_its_code() {
        assert!(Operation::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
        }
        assert_eq!(Operation::from_code(0x0001), None);
        assert_eq!(
            Operation::from_code(0x0044),
            Some(Operation::GetOutputDeviceAttributes)
        );
        assert_eq!(Operation::FetchJob.name(), "Fetch-Job");
        assert_eq!(describe(0x4000), "0x4000");
    }
}
