//! The sigma target (being written).

use super::{Context, Emitted};
use crate::diag::{Code, Severity};

/// Not written yet: reports that the target is not available.
pub fn emit(cx: &Context) -> Emitted {
    Emitted {
        text: String::new(),
        diagnostics: vec![cx.diagnostic(
            Severity::Error,
            Code::Untranslatable,
            None,
            "the sigma target is not implemented yet",
        )],
    }
}
