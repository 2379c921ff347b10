//! Why a use case did not do what was asked: the request's fault, named by the field that
//! holds it, or the coordinator's. The HTTP layer maps each variant to its status and code.

use thiserror::Error;

use crate::store::StoreError;
use crate::CoordinatorError;

#[derive(Debug, Error)]
pub enum AppError {
    /// A well-formed request with a wrong value.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A well-formed id that names nothing known.
    #[error("{field}: {message}")]
    Unknown { field: String, message: String },
    /// What the request is about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The return policy refuses the return; `field` is what it refuses it for.
    #[error("{message}")]
    Rejected { field: String, message: String },
    /// Already stored under this id.
    #[error("{field}: {message}")]
    Exists { field: String, message: String },
    /// No site of the fleet can take the return.
    #[error("no site can take this return today: {0}")]
    NoSite(String),
    /// A broken invariant or a fault of the configuration, not of the request.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
}

impl AppError {
    pub fn invalid_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn unknown_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Unknown {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Coordinator(e.into())
    }
}

impl From<modori_runtime::sqlite::DbError> for AppError {
    fn from(e: modori_runtime::sqlite::DbError) -> Self {
        Self::Coordinator(e.into())
    }
}
