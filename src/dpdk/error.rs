use super::ffi;
use std::ffi::CStr;

/// A DPDK call that failed, with DPDK's own words for why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {reason}{hint}")]
pub struct DpdkError {
    pub op: String,
    pub code: i32,
    pub reason: String,
    pub hint: &'static str,
}

impl DpdkError {
    /// From a negative return value or an `rte_errno` (sign ignored).
    pub fn from_code(op: impl Into<String>, code: i32) -> Self {
        let code = code.abs();
        // SAFETY: rte_strerror returns a pointer to a static or thread-local string.
        let reason = unsafe { CStr::from_ptr(ffi::rte_strerror(code)) }
            .to_string_lossy()
            .into_owned();
        DpdkError {
            op: op.into(),
            code,
            reason,
            hint: "",
        }
    }

    /// From the current `rte_errno`.
    pub fn last(op: impl Into<String>) -> Self {
        // SAFETY: reads a per-thread variable.
        Self::from_code(op, unsafe { ffi::sluice_errno() })
    }

    pub fn msg(op: impl Into<String>, reason: impl Into<String>) -> Self {
        DpdkError {
            op: op.into(),
            code: 0,
            reason: reason.into(),
            hint: "",
        }
    }

    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }
}

/// Turns a DPDK int return (negative = error) into a Result.
pub(crate) fn check(op: &str, rc: i32) -> Result<i32, DpdkError> {
    if rc < 0 {
        Err(DpdkError::from_code(op, rc))
    } else {
        Ok(rc)
    }
}
