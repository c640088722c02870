//! The esql target (being written).

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
            "the esql target is not implemented yet",
        )],
    }
}
